"""`import eqprop` trains ep-1h for one epoch on the committed sample and gets the CLI's test
error with the same seed (run by tests/test_tools.c on the sample; scripts/python_vs_cli.sh runs
it on full MNIST). Usage: python_ep.py DATA CLI_ERROR [TRAIN_LIMIT TEST_LIMIT] (0 = all)."""
import sys

import eqprop

sample, cli_error = sys.argv[1], float(sys.argv[2])
n_train = int(sys.argv[3]) if len(sys.argv) > 3 else 200
n_test = int(sys.argv[4]) if len(sys.argv) > 4 else 100
train = eqprop.load_data(sample, "train", n_train)
test = eqprop.load_data(sample, "test", n_test)
m = eqprop.EPModel("ep-1h", seed=1, epochs=1, threads=1)
st = m.train_epoch(train)
err, _ = m.evaluate(test)
assert train.x.shape[1] == 784 and (n_train == 0 or train.x.shape[0] == n_train)
assert m.params()["W1"].size > 0
ps = st["phase_seconds"]  # the stats struct's layout matches the C one
assert len(ps) == 4 and ps[0] == 0.0 and ps[1] > 0 and sum(ps) <= st["seconds"], ps
print("python test error %.6f, cli %.6f, epoch %d" % (err, cli_error, st["epoch"]))
# a NIR round trip through the binding (the import runs in a child process)
import os, tempfile
snn = eqprop.SNNModel("snn-mlp", sizes="784-16-10", steps=4)
nir = os.path.join(tempfile.mkdtemp(), "m.nir")
snn.export_nir(nir)
back = eqprop.SNNModel.from_nir(nir)
same = (back.predict(test) == snn.predict(test)).all()
print("nir round trip through python: predictions equal: %s" % same)
sys.exit(0 if abs(err - cli_error) < 1e-9 and same else 1)
