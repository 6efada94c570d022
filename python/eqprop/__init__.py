"""eqprop from Python: ctypes over the shared library (libeqprop.so) and numpy, nothing compiled.

    import eqprop
    train = eqprop.load_data("mnist", "train")
    test = eqprop.load_data("mnist", "test")
    m = eqprop.EPModel("ep-1h", seed=1)
    m.train_epoch(train)
    print(m.evaluate(test))          # the test error, as `eqprop train` reports it
    W1 = m.params()["W1"]            # numpy views of the parameters

Spiking networks: SNNModel("snn-mlp", sizes="784-100-10", ...), .train_epoch, .evaluate,
.predict, .trace (spikes and membranes of one example), .export_nir / SNNModel.from_nir.
Logs: read_log(path) gives the JSON-lines training log as a list of dicts.

The library is found through $EQPROP_LIB, then next to this package (an install puts
lib/libeqprop.so two levels above site-packages' parent), then the build tree, then the system.
Configs stay opaque: they are set with the library's own "key=value" parser, so every key of
`eqprop train --help` works here under the same name (dashes or underscores)."""
import ctypes as C
import json
import os

import numpy as np

__all__ = ["EqpropError", "Dataset", "EPModel", "SNNModel", "load_data", "read_log", "lib"]


def _find_lib():
    here = os.path.dirname(os.path.abspath(__file__))
    cands = [os.environ.get("EQPROP_LIB")]
    for up in ("../../../../lib", "../../../lib", "../../lib", "../../build"):
        cands.append(os.path.join(here, up, "libeqprop.so"))
    cands.append("libeqprop.so")
    for c in cands:
        if not c:
            continue
        try:
            return C.CDLL(c)
        except OSError:
            continue
    raise OSError("eqprop: cannot load libeqprop.so (set EQPROP_LIB)")


lib = _find_lib()
_p, _i, _sz, _d, _s = C.c_void_p, C.c_int, C.c_size_t, C.c_double, C.c_char_p


def _fn(name, res, *args):
    f = getattr(lib, name)
    f.restype = res
    f.argtypes = list(args)
    return f


class _Dataset(C.Structure):
    _fields_ = [("n", _sz), ("rows", _sz), ("cols", _sz), ("dim", _sz), ("n_classes", _sz),
                ("x", C.POINTER(C.c_float)), ("y", C.POINTER(C.c_uint8))]


class _EpochStats(C.Structure):
    _fields_ = [("epoch", _i), ("n", _sz), ("train_error", _d), ("train_cost", _d),
                ("seconds", _d), ("samples_per_second", _d), ("free_steps_mean", _d),
                ("nudge_steps_mean", _d), ("phase_seconds", _d * 4)]


class _SnnEpochStats(C.Structure):
    _fields_ = [("epoch", _i), ("n", _sz), ("train_error", _d), ("train_loss", _d),
                ("seconds", _d), ("samples_per_second", _d), ("n_rates", _i),
                ("rate", _d * 8)]


_last_error = _fn("eqp_last_error", _s)
_ds_load = _fn("eqp_dataset_load", _i, _s, _s, _sz, C.POINTER(C.POINTER(_Dataset)))
_ds_free = _fn("eqp_dataset_free", None, C.POINTER(_Dataset))
_rng_seed = _fn("eqp_rng_seed", None, _p, C.c_uint64)
# EP
_cfg_default = _fn("eqp_config_default", None, _p)
_cfg_preset = _fn("eqp_config_preset", _i, _p, _s)
_cfg_set = _fn("eqp_config_set", _i, _p, _s, _s)
_cfg_check = _fn("eqp_config_check", _i, _p)
_cfg_text = _fn("eqp_config_to_text", _sz, _p, _p, _sz)
_m_create = _fn("eqp_model_create", _i, _p, _p, C.POINTER(_p))
_m_free = _fn("eqp_model_free", None, _p)
_m_config = _fn("eqp_model_config", _p, _p)
_m_nparams = _fn("eqp_model_n_params", _sz, _p)
_m_params = _fn("eqp_model_params", C.POINTER(C.c_float), _p)
_m_nblocks = _fn("eqp_model_n_blocks", _i, _p)
_m_block = _fn("eqp_model_block", None, _p, _i, C.POINTER(_s), C.POINTER(_sz), C.POINTER(_sz),
               C.POINTER(_i))
_t_create = _fn("eqp_trainer_create", _i, _p, _p, C.POINTER(_Dataset), C.POINTER(_p))
_t_free = _fn("eqp_trainer_free", None, _p)
_t_epoch = _fn("eqp_trainer_run_epoch", _i, _p, C.POINTER(_EpochStats))
_evaluate = _fn("eqp_evaluate", _i, _p, C.POINTER(_Dataset), _i, _i, C.POINTER(_d),
                C.POINTER(_d))
_ck_save = _fn("eqp_checkpoint_save", _i, _s, _p, _p)
_ck_load = _fn("eqp_checkpoint_load", _i, _s, C.POINTER(_p), C.POINTER(_i))
# SNN
_scfg_default = _fn("eqp_snn_config_default", None, _p)
_scfg_preset = _fn("eqp_snn_config_preset", _i, _p, _s)
_scfg_set = _fn("eqp_snn_config_set", _i, _p, _s, _s)
_scfg_text = _fn("eqp_snn_config_to_text", _sz, _p, _p, _sz)
_s_create = _fn("eqp_snn_create", _i, _p, _p, C.POINTER(_p))
_s_free = _fn("eqp_snn_free", None, _p)
_s_config = _fn("eqp_snn_get_config", _p, _p)
_s_nparams = _fn("eqp_snn_n_params", _sz, _p)
_s_params = _fn("eqp_snn_params", C.POINTER(C.c_float), _p)
_s_nblocks = _fn("eqp_snn_n_blocks", _i, _p)
_s_block = _fn("eqp_snn_block", _i, _p, _i, C.POINTER(_s), C.POINTER(_sz), C.POINTER(_sz))
_s_eval = _fn("eqp_snn_evaluate", _i, _p, C.POINTER(_Dataset), _i, C.POINTER(_d), C.POINTER(_d))
_s_predict = _fn("eqp_snn_predict", _i, _p, C.POINTER(_Dataset), C.POINTER(C.c_uint8))
_s_trace = _fn("eqp_snn_trace", _i, _p, C.POINTER(_Dataset), _sz, _i, C.POINTER(C.c_float),
               C.POINTER(C.c_float))
_st_create = _fn("eqp_snn_trainer_create", _i, _p, C.POINTER(_Dataset), C.POINTER(_p))
_st_free = _fn("eqp_snn_trainer_free", None, _p)
_st_epoch = _fn("eqp_snn_trainer_run_epoch", _i, _p, C.POINTER(_SnnEpochStats))
_s_save = _fn("eqp_snn_save", _i, _s, _p, _p)
_s_load = _fn("eqp_snn_load", _i, _s, C.POINTER(_p), C.POINTER(_i))
_nir_export = _fn("eqp_nir_export", _i, _s, _p, _p)
_nir_import = _fn("eqp_nir_import_isolated", _i, _s, _p, C.POINTER(_p), _p, _d, _sz)

# Config structs are opaque here: the library fills a buffer bigger than any of them.
_CFG_BYTES = 1 << 16


class EqpropError(RuntimeError):
    pass


def _check(status):
    if status != 0:
        raise EqpropError(_last_error().decode())


def _b(s):
    return str(s).encode()


def _text(fn, ptr):
    n = fn(ptr, None, 0)
    buf = C.create_string_buffer(n + 1)
    fn(ptr, buf, n + 1)
    return dict(l.split("=", 1) for l in buf.value.decode().splitlines() if "=" in l)


class Dataset:
    """An IDX dataset in memory: .x (n, dim) float32 and .y (n,) uint8 are numpy views."""

    def __init__(self, spec="mnist", split="train", limit=0):
        self._p = C.POINTER(_Dataset)()
        _check(_ds_load(_b(spec), _b(split), limit, C.byref(self._p)))
        d = self._p.contents
        self.n, self.dim, self.n_classes = d.n, d.dim, d.n_classes
        self.x = np.ctypeslib.as_array(d.x, shape=(d.n, d.dim))
        self.y = np.ctypeslib.as_array(d.y, shape=(d.n,))

    def __len__(self):
        return self.n

    def __del__(self):
        if getattr(self, "_p", None):
            _ds_free(self._p)
            self._p = None


def load_data(spec="mnist", split="train", limit=0):
    """Load split 'train' or 'test' of mnist | fashion | a directory of the four IDX files."""
    return Dataset(spec, split, limit)


def _configure(default, preset_fn, set_fn, preset, overrides):
    cfg = C.create_string_buffer(_CFG_BYTES)
    default(cfg)
    if preset:
        _check(preset_fn(cfg, _b(preset)))
    for k, v in overrides.items():
        if isinstance(v, bool):
            v = "yes" if v else "no"
        _check(set_fn(cfg, _b(k.replace("_", "-")), _b(v)))
    return cfg


class _Params:
    def params(self):
        """{block name: numpy view (float32) of that block}; writes go into the model."""
        p = self._params_ptr(self._h)
        out = {}
        for k in range(self._nblocks(self._h)):
            name, off, size = self._block(k)
            out[name] = np.ctypeslib.as_array(C.cast(C.addressof(p.contents) + 4 * off,
                                                     C.POINTER(C.c_float)), shape=(size,))
        return out


class EPModel(_Params):
    """An energy-based network trained with Equilibrium Propagation (`eqprop train`)."""

    _params_ptr = staticmethod(_m_params)
    _nblocks = staticmethod(_m_nblocks)

    def __init__(self, preset="ep-1h", seed=1, _handle=None, **overrides):
        self._h, self._t, self._train = None, None, None
        if _handle is not None:
            self._h = _handle
            return
        overrides.setdefault("seed", seed)
        cfg = _configure(_cfg_default, _cfg_preset, _cfg_set, preset, overrides)
        _check(_cfg_check(cfg))
        rng = C.create_string_buffer(32)
        _rng_seed(rng, int(self._cfg_of(cfg)["seed"]))
        h = _p()
        _check(_m_create(cfg, rng, C.byref(h)))
        self._h = h

    @staticmethod
    def _cfg_of(ptr):
        return _text(_cfg_text, ptr)

    @property
    def config(self):
        return self._cfg_of(_m_config(self._h))

    def _block(self, k):
        name, off, size, grp = _s(), _sz(), _sz(), _i()
        _m_block(self._h, k, C.byref(name), C.byref(off), C.byref(size), C.byref(grp))
        return name.value.decode(), off.value, size.value

    def train_epoch(self, train):
        """One epoch on `train` (the same trainer is kept across calls); returns its stats."""
        if self._t is None or self._train is not train:
            if self._t:
                _t_free(self._t)
            t = _p()
            _check(_t_create(self._h, None, train._p, C.byref(t)))
            self._t, self._train = t, train
        st = _EpochStats()
        _check(_t_epoch(self._t, C.byref(st)))
        out = {k: getattr(st, k) for k, _ in _EpochStats._fields_}
        out["phase_seconds"] = list(out["phase_seconds"])  # drive, relax, exchange, update
        return out

    def evaluate(self, data, steps=None, threads=None):
        """(error, cost) on data, relaxing `steps` free steps (default: the config's)."""
        c = self.config
        err, cost = _d(), _d()
        _check(_evaluate(self._h, data._p, int(steps or c["eval-steps"]),
                         int(threads or c["threads"]), C.byref(err), C.byref(cost)))
        return err.value, cost.value

    def save(self, path):
        _check(_ck_save(_b(path), self._h, None))

    @classmethod
    def load(cls, path):
        h = _p()
        _check(_ck_load(_b(path), C.byref(h), None))
        return cls(_handle=h)

    def __del__(self):
        if getattr(self, "_t", None):
            _t_free(self._t)
        if getattr(self, "_h", None):
            _m_free(self._h)
        self._t = self._h = None


class SNNModel(_Params):
    """A spiking network trained by BPTT or e-prop (`eqprop train --preset snn-...`)."""

    _params_ptr = staticmethod(_s_params)
    _nblocks = staticmethod(_s_nblocks)

    def __init__(self, preset="snn-mlp", seed=1, _handle=None, **overrides):
        self._h, self._t, self._train = None, None, None
        if _handle is not None:
            self._h = _handle
            return
        overrides.setdefault("seed", seed)
        cfg = _configure(_scfg_default, _scfg_preset, _scfg_set, preset, overrides)
        rng = C.create_string_buffer(32)
        _rng_seed(rng, int(_text(_scfg_text, cfg)["seed"]))
        h = _p()
        _check(_s_create(cfg, rng, C.byref(h)))
        self._h = h

    @property
    def config(self):
        return _text(_scfg_text, _s_config(self._h))

    def _block(self, k):
        name, off, size = _s(), _sz(), _sz()
        _check(_s_block(self._h, k, C.byref(name), C.byref(off), C.byref(size)))
        return name.value.decode(), off.value, size.value

    def train_epoch(self, train):
        if self._t is None or self._train is not train:
            if self._t:
                _st_free(self._t)
            t = _p()
            _check(_st_create(self._h, train._p, C.byref(t)))
            self._t, self._train = t, train
        st = _SnnEpochStats()
        _check(_st_epoch(self._t, C.byref(st)))
        out = {k: getattr(st, k) for k, _ in _SnnEpochStats._fields_ if k != "rate"}
        out["rate"] = list(st.rate[:st.n_rates])
        return out

    def evaluate(self, data, threads=1):
        """(error, loss) on data."""
        err, loss = _d(), _d()
        _check(_s_eval(self._h, data._p, threads, C.byref(err), C.byref(loss)))
        return err.value, loss.value

    def predict(self, data):
        """Predicted classes (n,) uint8."""
        out = np.zeros(data.n, dtype=np.uint8)
        _check(_s_predict(self._h, data._p, out.ctypes.data_as(C.POINTER(C.c_uint8))))
        return out

    def trace(self, data, index, layer=1):
        """(z, v): spikes (or a readout's membrane) and membranes, each (T, units), of `layer`
        on example `index`."""
        c = self.config
        T, n = int(c["steps"]), self._layer_units(layer)
        z = np.zeros((T, n), dtype=np.float32)
        v = np.zeros((T, n), dtype=np.float32)
        fp = C.POINTER(C.c_float)
        _check(_s_trace(self._h, data._p, index, layer, z.ctypes.data_as(fp), v.ctypes.data_as(fp)))
        return z, v

    def _layer_units(self, layer):
        name, off, size = None, 0, 0
        for k in range(self._nblocks(self._h)):
            name, off, size = self._block(k)
            if name == "b%d" % layer:
                break
        # a dense layer's b has one value per unit, a conv layer's one per channel: use theta/alpha
        for k in range(self._nblocks(self._h)):
            nm, _, sz = self._block(k)
            if nm.endswith(str(layer)) and nm.rstrip("0123456789") in ("theta", "alpha"):
                return sz
        return size

    def save(self, path):
        _check(_s_save(_b(path), self._h, None))

    @classmethod
    def load(cls, path):
        h = _p()
        _check(_s_load(_b(path), C.byref(h), None))
        return cls(_handle=h)

    def export_nir(self, path):
        """Write the network as a NIR graph (dt 1 ms, forward-Euler decay map)."""
        _check(_nir_export(_b(path), self._h, None))

    @classmethod
    def from_nir(cls, path, timeout=60.0):
        """Read a NIR graph (the file's dt and decay map, else 1 ms and Euler) in a child
        process (eqp_nir_import_isolated), so that a hostile file cannot crash or hang the
        interpreter through libhdf5; timeout in seconds."""
        h = _p()
        _check(_nir_import(_b(path), None, C.byref(h), None, float(timeout), 0))
        return cls(_handle=h)

    def __del__(self):
        if getattr(self, "_t", None):
            _st_free(self._t)
        if getattr(self, "_h", None):
            _s_free(self._h)
        self._t = self._h = None


def read_log(path):
    """The JSON-lines log of `eqprop train --log` as a list of dicts (one per epoch)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
