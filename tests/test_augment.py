"""The augmentation warp (_core.affine_warp) and ImageDataGenerator / flow."""
import numpy as np
import pytest

import reference as ref
from helpers import compare, same_bits, threads

import fastnn
from fastnn import _core
from fastnn.data import ImageDataGenerator

MODES = ["nearest", "constant", "reflect", "wrap"]
IDENTITY = np.array([[1.0, 0, 0], [0, 1.0, 0]])


def warp(x, m, index=None, fill_mode="nearest", cval=0.0):
    return _core.affine_warp(x, m, index, fill_mode=fill_mode, cval=cval)


def shift_matrix(dr, dc):
    return np.array([[1.0, 0, dr], [0, 1.0, dc]])


def rotation_zoom_matrix(deg, zr, zc, h, w, tr=0.0, tc=0.0):
    return ref.ref_augment_matrix(deg, tr, tc, zc, zr, False, False, h, w)


def random_matrices(rs, n, h, w):
    out = []
    for _ in range(n):
        out.append(rotation_zoom_matrix(rs.uniform(-40, 40), rs.uniform(0.7, 1.3), rs.uniform(0.7, 1.3), h, w,
                                        rs.uniform(-0.3, 0.3) * h, rs.uniform(-0.3, 0.3) * w))
    return np.stack(out)


# ---------------------------------------------------------------------------
# the kernel against the float64 reference

SHAPES = [(1, 5, 7, 1), (3, 8, 8, 3), (2, 1, 6, 2), (2, 6, 1, 1), (4, 28, 28, 1), (2, 9, 11, 5), (1, 2, 2, 16)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", MODES)
def test_random_affine_vs_reference(shape, mode, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    m = random_matrices(rng, shape[0], shape[1], shape[2])
    out = warp(x, m, fill_mode=mode, cval=0.37)
    assert out.dtype == np.float32 and out.shape == shape
    compare(out, ref.ref_affine_warp(x, m, fill_mode=mode, cval=0.37), name=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["int_shift", "frac_shift", "rotation", "zoom_in", "zoom_out", "hflip", "vflip",
                                  "rot_flip", "far_outside"])
def test_named_transforms_vs_reference(kind, mode, rng):
    n, h, w, c = 3, 9, 12, 2
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    mats = {
        "int_shift": shift_matrix(2, -3),
        "frac_shift": shift_matrix(-1.25, 0.5),
        "rotation": rotation_zoom_matrix(33.0, 1, 1, h, w),
        "zoom_in": rotation_zoom_matrix(0, 0.8, 0.9, h, w),
        "zoom_out": rotation_zoom_matrix(0, 1.25, 1.5, h, w),
        "hflip": np.array([[1.0, 0, 0], [0, -1.0, w - 1]]),
        "vflip": np.array([[-1.0, 0, h - 1], [0, 1.0, 0]]),
        "rot_flip": ref.ref_augment_matrix(-17, 1.5, -0.5, 1.1, 0.9, True, True, h, w),
        "far_outside": shift_matrix(-1000.5, 2500.25),
    }
    m = np.broadcast_to(mats[kind], (n, 2, 3))
    out = warp(x, m, fill_mode=mode, cval=-2.0)
    compare(out, ref.ref_affine_warp(x, m, fill_mode=mode, cval=-2.0), name=f"{kind}/{mode}")


def test_identity_copies_bitwise_even_nan(rng):
    x = rng.standard_normal((4, 5, 6, 3)).astype(np.float32)
    x[1, 2, 3, 1] = np.nan
    x[2, 0, 0, 0] = np.inf
    out = warp(x, np.broadcast_to(IDENTITY, (4, 2, 3)))
    same_bits(out, x)


@pytest.mark.parametrize("dr,dc", [(1, 0), (0, -2), (3, 4), (-5, 1)])
def test_integer_shift_is_exact_nearest(dr, dc, rng):
    x = rng.standard_normal((2, 7, 8, 3)).astype(np.float32)
    out = warp(x, np.broadcast_to(shift_matrix(dr, dc), (2, 2, 3)))
    rows = np.clip(np.arange(7) + dr, 0, 6)
    cols = np.clip(np.arange(8) + dc, 0, 7)
    same_bits(out, x[:, rows][:, :, cols])


def test_integer_shift_constant_fill(rng):
    x = rng.standard_normal((1, 6, 6, 1)).astype(np.float32)
    out = warp(x, shift_matrix(0, 2)[None], fill_mode="constant", cval=5.0)[0, :, :, 0]
    np.testing.assert_array_equal(out[:, :4], x[0, :, 2:, 0])
    np.testing.assert_array_equal(out[:, 4:], 5.0)


def test_half_pixel_shift_is_mean_of_neighbours(rng):
    x = rng.standard_normal((2, 5, 9, 4)).astype(np.float32)
    out = warp(x, np.broadcast_to(shift_matrix(0, 0.5), (2, 2, 3)))
    expected = 0.5 * (x[:, :, :-1].astype(np.float64) + x[:, :, 1:])
    compare(out[:, :, :-1], expected)


def test_flips_are_exact(rng):
    x = rng.standard_normal((3, 5, 7, 2)).astype(np.float32)
    h, w = 5, 7
    same_bits(warp(x, np.broadcast_to([[1.0, 0, 0], [0, -1.0, w - 1]], (3, 2, 3))), x[:, :, ::-1])
    same_bits(warp(x, np.broadcast_to([[-1.0, 0, h - 1], [0, 1.0, 0]], (3, 2, 3))), x[:, ::-1])


@pytest.mark.parametrize("mode,scipy_mode", [("nearest", "nearest"), ("constant", "grid-constant"),
                                             ("reflect", "reflect"), ("wrap", "grid-wrap")])
def test_matches_scipy_ndimage(mode, scipy_mode, rng):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = rng.standard_normal((3, 10, 13, 1)).astype(np.float32)
    m = random_matrices(rng, 3, 10, 13)
    out = warp(x, m, fill_mode=mode, cval=0.5)
    for b in range(3):
        exp = ndimage.affine_transform(x[b, :, :, 0].astype(np.float64), m[b, :, :2], m[b, :, 2], order=1,
                                       mode=scipy_mode, cval=0.5)
        compare(out[b, :, :, 0], exp, name=f"scipy {scipy_mode}")


def test_index_selects_samples(rng):
    x = rng.standard_normal((6, 5, 5, 2)).astype(np.float32)
    idx = np.array([5, 0, 0, 3], dtype=np.uint8)
    m = random_matrices(rng, 4, 5, 5)
    out = warp(x, m, idx)
    compare(out, ref.ref_affine_warp(x, m, idx))
    same_bits(out, warp(x[idx.astype(int)], m))


def test_accepts_float64_noncontiguous_and_uint8(rng):
    x64 = rng.standard_normal((3, 6, 8, 2))
    m = random_matrices(rng, 3, 6, 8)
    base = warp(x64.astype(np.float32), m)
    same_bits(warp(x64, m), base)
    xf = np.asfortranarray(x64.astype(np.float32))
    same_bits(warp(xf, m), base)
    xs = np.ascontiguousarray(x64.astype(np.float32)[:, :, ::-1])[:, :, ::-1]  # negative strides
    same_bits(warp(xs, m), base)
    xu = rng.integers(0, 256, (3, 6, 8, 2)).astype(np.uint8)
    same_bits(warp(xu, m), warp(xu.astype(np.float32), m))


def test_empty_batch(rng):
    x = np.zeros((0, 4, 5, 3), np.float32)
    assert warp(x, np.zeros((0, 2, 3))).shape == (0, 4, 5, 3)
    x1 = np.ones((2, 4, 5, 3), np.float32)
    assert warp(x1, np.zeros((0, 2, 3)), np.zeros(0, np.int64)).shape == (0, 4, 5, 3)


def test_huge_coordinates_do_not_crash(rng):
    x = rng.standard_normal((4, 5, 6, 1)).astype(np.float32)
    m = np.array([[[1e300, -1e300, 1e308], [1e300, 1e300, -1e308]],
                  [[0, 0, 1e12], [0, 0, -1e12]],
                  [[1, 0, 2.0**40], [0, 1, -2.0**40]],
                  [[1e-300, 0, 0], [0, 1e-300, 0]]])
    for mode in MODES:
        out = warp(x, m, fill_mode=mode, cval=3.0)
        assert out.shape == x.shape
        assert np.all(np.isfinite(out))
    out = warp(x, m, fill_mode="constant", cval=3.0)
    np.testing.assert_array_equal(out[1:3], 3.0)


def test_nan_pixels_propagate_locally():
    x = np.zeros((1, 6, 6, 1), np.float32)
    x[0, 3, 3, 0] = np.nan
    out = warp(x, shift_matrix(0.5, 0.5)[None])[0, :, :, 0]
    assert np.isnan(out[2:4, 2:4]).all()
    assert np.isfinite(out[:2]).all() and np.isfinite(out[5:]).all()


def test_threads_bitwise(rng):
    x = rng.standard_normal((37, 28, 28, 1)).astype(np.float32)
    x3 = rng.standard_normal((37, 11, 9, 3)).astype(np.float32)
    m = random_matrices(rng, 37, 28, 28)
    with threads(1):
        a, a3 = warp(x, m, fill_mode="reflect"), warp(x3, m, fill_mode="constant")
    with threads(2):
        b, b3 = warp(x, m, fill_mode="reflect"), warp(x3, m, fill_mode="constant")
    same_bits(a, b)
    same_bits(a3, b3)


class TestBadInput:
    x = np.zeros((2, 4, 4, 1), np.float32)
    m = np.broadcast_to(IDENTITY, (2, 2, 3))

    @pytest.mark.parametrize("dtype", [bool, np.complex64, object])
    def test_x_dtype(self, dtype):
        with pytest.raises(TypeError, match="x"):
            warp(self.x.astype(dtype), self.m)

    @pytest.mark.parametrize("dtype", [bool, np.complex128, object])
    def test_matrices_dtype(self, dtype):
        with pytest.raises(TypeError, match="matrices"):
            warp(self.x, self.m.astype(dtype))

    def test_x_rank(self):
        with pytest.raises(ValueError, match="x"):
            warp(np.zeros((4, 4, 1), np.float32), self.m)

    @pytest.mark.parametrize("shape", [(2, 0, 4, 1), (2, 4, 0, 1), (2, 4, 4, 0)])
    def test_zero_sizes(self, shape):
        with pytest.raises(ValueError, match="x"):
            warp(np.zeros(shape, np.float32), self.m)

    @pytest.mark.parametrize("shape", [(2, 3, 3), (2, 2, 2), (2, 6), (3, 2, 3)])
    def test_matrix_shape(self, shape):
        with pytest.raises(ValueError, match="matrices"):
            warp(self.x, np.zeros(shape))

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
    def test_matrix_not_finite(self, bad):
        m = np.array(self.m)
        m[1, 0, 2] = bad
        with pytest.raises(ValueError, match="matrices"):
            warp(self.x, m)

    @pytest.mark.parametrize("idx", [[0, 2], [-1, 0], [0, 1, 1]])
    def test_index_range_and_shape(self, idx):
        with pytest.raises(ValueError, match="index"):
            warp(self.x, self.m, np.array(idx))

    def test_index_dtype(self):
        with pytest.raises(TypeError, match="index"):
            warp(self.x, self.m, np.array([0.0, 1.0]))

    def test_index_rank(self):
        with pytest.raises(ValueError, match="index"):
            warp(self.x, self.m, np.zeros((2, 1), np.int64))

    def test_fill_mode(self):
        with pytest.raises(ValueError, match="fill_mode"):
            warp(self.x, self.m, fill_mode="mirror")


# ---------------------------------------------------------------------------
# ImageDataGenerator and flow

def full_gen(**kw):
    args = dict(rotation_range=10, zoom_range=0.1, width_shift_range=0.1, height_shift_range=0.1,
                horizontal_flip=True, vertical_flip=True, seed=7)
    args.update(kw)
    return ImageDataGenerator(**args)


def epoch_by_sample(flow, n):
    """Run one epoch of a flow whose y is arange(n); return images ordered by sample."""
    out = np.zeros((n,) + flow.x.shape[1:], np.float32)
    seen = np.zeros(n, int)
    for _ in range(len(flow)):
        xb, yb = next(flow)
        out[yb] = xb
        seen[yb] += 1
    np.testing.assert_array_equal(seen, 1)
    return out


def test_flow_shapes_len_and_epoch_coverage(rng):
    x = rng.integers(0, 256, (50, 12, 10)).astype(np.uint8)
    y = np.arange(50)
    fl = ImageDataGenerator(seed=3).flow(x, y, batch_size=16)
    assert len(fl) == 4
    sizes, seen = [], []
    for _ in range(4):
        xb, yb = next(fl)
        assert xb.dtype == np.float32 and xb.shape[1:] == (12, 10, 1)
        sizes.append(len(xb))
        seen.append(yb)
        same_bits(xb, x[yb][..., None].astype(np.float32))  # no transform configured
    assert sizes == [16, 16, 16, 2]
    assert sorted(np.concatenate(seen)) == list(range(50))
    assert fl.epoch == 1 and fl.batch_index == 0
    order1 = np.concatenate([next(fl)[1] for _ in range(4)])
    assert sorted(order1) == list(range(50))
    assert not np.array_equal(order1, np.concatenate(seen))  # reshuffled per epoch


def test_flow_no_shuffle_and_x_only(rng):
    x = rng.standard_normal((10, 4, 4, 2)).astype(np.float32)
    fl = ImageDataGenerator().flow(x, batch_size=4, shuffle=False)
    b = [next(fl) for _ in range(4)]
    assert isinstance(b[0], np.ndarray)
    same_bits(b[0], x[:4])
    same_bits(b[2], x[8:])
    same_bits(b[3], x[:4])


def test_flow_batches_vs_reference(rng):
    gen = full_gen(fill_mode="constant", cval=0.25)
    x = rng.standard_normal((20, 11, 13, 3)).astype(np.float32)
    fl = gen.flow(x, np.arange(20), batch_size=8)
    for _ in range(3):
        epoch = fl.epoch
        xb, yb = next(fl)
        p = gen._params(fl.seed, epoch, yb, 11, 13)
        mats = np.stack([ref.ref_augment_matrix(p["theta"][i], p["tx"][i], p["ty"][i], p["zx"][i], p["zy"][i],
                                                p["flip_horizontal"][i], p["flip_vertical"][i], 11, 13)
                         for i in range(len(yb))])
        compare(xb, ref.ref_affine_warp(x, mats, yb, fill_mode="constant", cval=0.25))


def test_generator_matrices_vs_reference(rng):
    gen = full_gen(zoom_range=(0.5, 1.5), width_shift_range=3, height_shift_range=[0.1, 0.2])
    p = gen._params(11, 2, np.arange(64), 9, 14)
    m = gen._matrices(p, 9, 14)
    for i in range(64):
        exp = ref.ref_augment_matrix(p["theta"][i], p["tx"][i], p["ty"][i], p["zx"][i], p["zy"][i],
                                     p["flip_horizontal"][i], p["flip_vertical"][i], 9, 14)
        np.testing.assert_allclose(m[i], exp, rtol=1e-12, atol=1e-12)


def test_same_seed_same_batches_different_seed_differs(rng):
    x = rng.standard_normal((30, 8, 8, 1)).astype(np.float32)
    a = [next(full_gen(seed=5).flow(x, batch_size=30))]
    f1, f2 = full_gen(seed=5).flow(x, batch_size=7), full_gen(seed=5).flow(x, batch_size=7)
    for _ in range(9):
        same_bits(next(f1), next(f2))
    f3 = full_gen(seed=6).flow(x, batch_size=30)
    assert not np.array_equal(a[0], next(f3))
    # flow(seed=) overrides the generator's seed
    same_bits(next(full_gen(seed=1).flow(x, batch_size=30, seed=5)), a[0])


def test_global_seed_used_when_no_seed(rng):
    x = rng.standard_normal((12, 6, 6, 1)).astype(np.float32)
    old = fastnn.get_seed()
    try:
        fastnn.set_seed(42)
        a = next(full_gen(seed=None).flow(x, batch_size=12))
        b = next(full_gen(seed=42).flow(x, batch_size=12))
        fastnn.set_seed(43)
        c = next(full_gen(seed=None).flow(x, batch_size=12))
    finally:
        fastnn.set_seed(old)
    same_bits(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("shuffle", [True, False])
def test_per_sample_transform_independent_of_batch_size(shuffle, rng):
    x = rng.standard_normal((41, 9, 9, 2)).astype(np.float32)
    y = np.arange(41)
    gen = full_gen()
    e_small = epoch_by_sample(gen.flow(x, y, batch_size=5, shuffle=shuffle), 41)
    e_big = epoch_by_sample(gen.flow(x, y, batch_size=41, shuffle=shuffle), 41)
    same_bits(e_small, e_big)
    # and a different epoch gives different transforms
    fl = gen.flow(x, y, batch_size=41, shuffle=shuffle)
    next(fl)
    assert not np.array_equal(epoch_by_sample(fl, 41), e_big)


def test_flow_threads_bitwise(rng):
    x = rng.standard_normal((90, 28, 28, 1)).astype(np.float32)
    with threads(1):
        fl = full_gen().flow(x, batch_size=43)
        a = [next(fl) for _ in range(5)]
    with threads(2):
        fl = full_gen().flow(x, batch_size=43)
        b = [next(fl) for _ in range(5)]
    for u, v in zip(a, b):
        same_bits(u, v)


def test_resume_with_set_state(rng):
    x = rng.standard_normal((25, 6, 6, 1)).astype(np.float32)
    fl = full_gen().flow(x, np.arange(25), batch_size=10)
    seq = [next(fl) for _ in range(8)]
    fl2 = full_gen().flow(x, np.arange(25), batch_size=10)
    fl2.set_state({"epoch": 1, "batch_index": 1})
    for k in range(4, 8):
        xb, yb = next(fl2)
        same_bits(xb, seq[k][0])
        np.testing.assert_array_equal(yb, seq[k][1])
    assert fl2.get_state()["epoch"] == 2
    assert len(fl2[0][0]) == 10  # __getitem__ does not advance
    assert fl2.get_state()["batch_index"] == 2


def test_parameter_statistics():
    h, w = 28, 20
    gen = ImageDataGenerator(rotation_range=10, zoom_range=0.1, width_shift_range=0.1, height_shift_range=0.2,
                             horizontal_flip=True, vertical_flip=False, seed=0)
    n = 20000
    p = gen._params(0, 0, np.arange(n), h, w)
    for key, lim in (("theta", 10), ("tx", 0.2 * h), ("ty", 0.1 * w)):
        v = p[key]
        assert np.abs(v).max() <= lim and np.abs(v).max() > 0.98 * lim, key
        assert abs(v.mean()) < 0.03 * lim, key
        assert abs(v.std() - lim / np.sqrt(3)) < 0.03 * lim, key  # uniform on [-lim, lim]
    for key in ("zx", "zy"):
        assert p[key].min() >= 0.9 and p[key].max() <= 1.1
        assert abs(p[key].mean() - 1.0) < 0.003
    assert abs(np.corrcoef(p["zx"], p["zy"])[0, 1]) < 0.03  # independent axes
    assert abs(np.corrcoef(p["theta"], p["tx"])[0, 1]) < 0.03
    assert abs(p["flip_horizontal"].mean() - 0.5) < 0.02
    assert not p["flip_vertical"].any()
    # a different epoch gives different draws for the same samples
    q = gen._params(0, 1, np.arange(n), h, w)
    assert abs(np.corrcoef(p["theta"], q["theta"])[0, 1]) < 0.03


def test_shift_range_kinds():
    n = 5000
    p = ImageDataGenerator(width_shift_range=3, height_shift_range=2.5)._params(1, 0, np.arange(n), 10, 10)
    assert set(np.unique(p["ty"])) == {-2.0, -1.0, 0.0, 1.0, 2.0}  # int: whole pixels in (-3, 3)
    assert np.abs(p["tx"]).max() <= 2.5 and len(np.unique(p["tx"])) > 1000  # float >= 1: pixels, uniform
    p = ImageDataGenerator(width_shift_range=[0.1, 0.2])._params(1, 0, np.arange(n), 10, 30)
    assert set(np.round(np.unique(p["ty"]), 9)) == {-6.0, -3.0, 3.0, 6.0}
    p = ImageDataGenerator(zoom_range=(0.5, 0.8))._params(1, 0, np.arange(n), 10, 10)
    assert p["zx"].min() >= 0.5 and p["zx"].max() <= 0.8


def test_no_transform_params_are_identity():
    gen = ImageDataGenerator()
    m = gen._matrices(gen._params(0, 0, np.arange(5), 7, 9), 7, 9)
    np.testing.assert_array_equal(m, np.broadcast_to(IDENTITY, (5, 2, 3)))


def test_rescale_and_single_image_api(rng):
    x = rng.integers(0, 256, (8, 10, 10)).astype(np.uint8)
    gen = full_gen(rescale=1 / 255.0)
    xb = next(gen.flow(x, batch_size=8, shuffle=False))
    raw = next(full_gen().flow(x, batch_size=8, shuffle=False))
    compare(xb, raw.astype(np.float64) / 255.0)
    g = full_gen()
    params = g.get_random_transform((10, 10), seed=3)
    assert set(params) >= {"theta", "tx", "ty", "zx", "zy", "flip_horizontal", "flip_vertical"}
    one = g.apply_transform(x[0], params)
    assert one.shape == (10, 10)
    exp = ref.ref_warp_image(x[0][..., None], ref.ref_augment_matrix(
        params["theta"], params["tx"], params["ty"], params["zx"], params["zy"], params["flip_horizontal"],
        params["flip_vertical"], 10, 10))[..., 0]
    compare(one, exp)
    same_bits(g.random_transform(x[0], seed=3), one)
    assert g.random_transform(x[0][..., None]).shape == (10, 10, 1)


class TestGeneratorBadArgs:
    @pytest.mark.parametrize("kw,exc,match", [
        ({"rotation_range": -1}, ValueError, "rotation_range"),
        ({"rotation_range": "10"}, TypeError, "rotation_range"),
        ({"zoom_range": -0.1}, ValueError, "zoom_range"),
        ({"zoom_range": (1.2, 0.8)}, ValueError, "zoom_range"),
        ({"zoom_range": (1, 2, 3)}, ValueError, "zoom_range"),
        ({"width_shift_range": -0.1}, ValueError, "width_shift_range"),
        ({"height_shift_range": float("nan")}, ValueError, "height_shift_range"),
        ({"fill_mode": "mirror"}, ValueError, "fill_mode"),
        ({"seed": -1}, ValueError, "seed"),
    ])
    def test_constructor(self, kw, exc, match):
        with pytest.raises(exc, match=match):
            ImageDataGenerator(**kw)

    def test_flow_args(self):
        gen = ImageDataGenerator()
        x = np.zeros((4, 5, 5, 1), np.float32)
        with pytest.raises(ValueError, match="batch_size"):
            gen.flow(x, batch_size=0)
        with pytest.raises(ValueError, match="y"):
            gen.flow(x, np.arange(3))
        with pytest.raises(ValueError, match="x"):
            gen.flow(np.zeros((4, 5), np.float32))
        with pytest.raises(ValueError, match="x"):
            gen.flow(np.zeros((0, 5, 5, 1), np.float32))
        with pytest.raises(TypeError, match="x"):
            gen.flow(x.astype(bool))
