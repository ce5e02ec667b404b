"""The web UI: one module per tab, each with its layout, handlers and wiring; formatting kept pure."""
