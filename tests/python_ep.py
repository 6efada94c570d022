"""`import eqprop` trains ep-1h for one epoch on the committed sample and gets the CLI's test
error with the same seed (run by tests/test_python.sh)."""
import sys

import eqprop

sample, cli_error = sys.argv[1], float(sys.argv[2])
train = eqprop.load_data(sample, "train", 200)
test = eqprop.load_data(sample, "test", 100)
m = eqprop.EPModel("ep-1h", seed=1, epochs=1, threads=1)
st = m.train_epoch(train)
err, _ = m.evaluate(test)
assert train.x.shape == (200, 784) and m.params()["W1"].size > 0
print("python test error %.6f, cli %.6f, epoch %d" % (err, cli_error, st["epoch"]))
sys.exit(0 if abs(err - cli_error) < 1e-9 else 1)
