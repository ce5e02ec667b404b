"""Pixels to a card's tensor: channel order, mean and std in that order, layout."""

import numpy as np

from models.catalog import InputContract
from pipelines.common.preprocess import to_tensor


def test_bgr_cards_subtract_their_mean_in_bgr_order():
    pixel = np.array([[[10, 20, 30]]], np.uint8)  # one RGB pixel: R 10, G 20, B 30
    contract = InputContract(height=1, width=1, layout="NCHW", channels="BGR", mean=(1.0, 2.0, 3.0),
                             std=(1.0, 2.0, 4.0), resize="letterbox")
    tensor = to_tensor(pixel, contract)
    # channel 0 is blue: (30 - 1) / 1; channel 1 green: (20 - 2) / 2; channel 2 red: (10 - 3) / 4
    np.testing.assert_allclose(tensor.reshape(3), [29.0, 9.0, 1.75])


def test_rgb_nhwc_keeps_the_order():
    pixel = np.array([[[10, 20, 30]]], np.uint8)
    contract = InputContract(height=1, width=1, layout="NHWC", channels="RGB", mean=(1.0, 2.0, 3.0),
                             std=(1.0, 2.0, 4.0), resize="letterbox")
    np.testing.assert_allclose(to_tensor(pixel, contract).reshape(3), [9.0, 9.0, 6.75])


def test_batches_match_the_plain_formula_in_every_layout_and_leave_the_input_alone():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (4, 5, 7, 3)).astype(np.float32)
    before = pixels.copy()
    mean, std = (127.5, 120.0, 110.0), (128.0, 60.0, 50.0)
    for layout in ("NHWC", "NCHW"):
        for transposed in (False, True):
            contract = InputContract(height=5, width=7, layout=layout, channels="RGB", mean=mean, std=std,
                                     resize="stretch", transposed=transposed)
            expected = (pixels - np.float32(mean)) / np.float32(std)
            if transposed:
                expected = expected.transpose(0, 2, 1, 3)  # [N, W, H, C]
            if layout == "NCHW":
                expected = expected.transpose(0, 3, 1, 2)
            tensor = to_tensor(pixels, contract)
            assert tensor.dtype == np.float32 and tensor.flags.c_contiguous
            np.testing.assert_array_equal(tensor, expected)
            np.testing.assert_array_equal(pixels, before)  # a float32 input is never scaled in place
