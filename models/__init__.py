"""Model cards, the store that finds their files, and one backend per runtime."""
