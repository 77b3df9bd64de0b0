"""Rebuild the few-shot example set from scikit-image's bundled CC0 texture photos.

    python assets/fewshot/make_fewshot.py

Each photo is 512x512 (greyscale). Four training crops (170x170) come from the top two thirds,
the test crop from the bottom third, so no test pixel is ever among the examples.
"""

from pathlib import Path

from PIL import Image
from skimage import data

HERE = Path(__file__).resolve().parent
SIDE = 170
TRAIN = [(0, 0), (171, 0), (342, 0), (0, 171)]  # (left, top) of each training crop
TEST = (171, 342)


def crop(array, left, top):
    return Image.fromarray(array[top : top + SIDE, left : left + SIDE])


for name in ("brick", "gravel", "grass"):
    photo = getattr(data, name)()  # (512, 512) uint8
    for n, (left, top) in enumerate(TRAIN, start=1):
        crop(photo, left, top).save(HERE / f"{name}-train-{n}.jpg", quality=90)
    crop(photo, *TEST).save(HERE / f"{name}-test.jpg", quality=90)
