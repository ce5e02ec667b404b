"""Figures for the screens (no gradio): the profile chart, numbered faces and landmarks on a photo."""

from __future__ import annotations


def profile_figure(profile, title: str):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.2), layout="constrained")
    ax = figure.add_subplot()
    entries = list(profile.entries)[::-1]
    ax.barh([f"{e.category} ({e.group})" for e in entries], [len(e.photos) for e in entries], color="tab:blue")
    ax.set_xlabel("photos")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    return figure


def draw_landmarks(image, faces):
    """The photo with each face's number above its box (the box itself is drawn by AnnotatedImage) and its
    landmarks as dots: "enrol face #N" names the face a person sees marked N."""
    from PIL import ImageDraw, ImageFont

    image = image.copy()
    draw = ImageDraw.Draw(image)
    radius = max(2, round(max(image.size) / 300))
    size = max(16, round(max(image.size) / 16))  # readable where the photo is shown small
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # an older Pillow without sized default fonts
        font = ImageFont.load_default()
    for number, face in enumerate(faces, start=1):
        x1, y1 = face.box[0], face.box[1]
        label = str(number)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        y = max(0, y1 - (bottom - top) - 6)
        draw.rectangle((x1, y, x1 + right - left + 8, y + bottom - top + 6), fill=(20, 20, 20))
        draw.text((x1 + 4 - left, y + 3 - top), label, fill=(255, 255, 255), font=font)
        for (x, y_), present in zip(face.landmarks, face.landmarks_present):
            if present:
                draw.ellipse((x - radius, y_ - radius, x + radius, y_ + radius), fill=(255, 40, 40),
                             outline=(255, 255, 255))
    return image
