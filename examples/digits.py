"""Handwritten digits read as sequences: many to one.

Task: classify scikit-learn's bundled 8x8 images of handwritten digits
(``sklearn.datasets.load_digits``: 1,797 images, 10 classes, pixels scaled
to [0, 1]) with a :class:`rnncore.models.SequenceClassifier` that reads
each image in one of two ways:

* row by row: 8 steps of 8 pixels;
* pixel by pixel: 64 steps of 1 pixel, a test of longer memory (the class
  depends on pixels seen up to 64 steps before the end).

Split: a fixed random 25 % of the images for testing (``--seed``).
Reported: the test accuracy of each reading (result rows ``digits_rows``
and ``digits_pixels``) next to the feed-forward baseline, an
:class:`rnncore.models.MLPClassifier` that sees all 64 pixels at once,
trained on the same split with the same schedule.

Run: ``python examples/digits.py`` (1 to 1.5 min on 2 cores);
``--quick`` trains on 300 images for 3 epochs.
"""

import _common  # first: caps NumPy's BLAS threads

import numpy as np

from rnncore.models import MLPClassifier, SequenceClassifier

READINGS = {"rows": (8, 8), "pixels": (64, 1)}  # name -> (steps, pixels per step)
TEST_FRACTION = 0.25
QUICK_TRAIN = 300


def load_digits(quick: bool, seed: int) -> tuple:
    """Images ``[N, 64]`` in [0, 1], labels ``[N]``, and the train and test indices."""
    datasets = _common.require("sklearn.datasets")
    digits = datasets.load_digits()
    X = (digits.data / 16).astype(np.float32)
    train, test = _common.split(len(X), TEST_FRACTION, seed)
    if quick:
        train = train[:QUICK_TRAIN]
    return X, digits.target, train, test


def fit_and_score(model, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, args) -> tuple:
    """Train ``model`` on the train rows; its test accuracy, training losses and seconds."""
    timer = _common.Timer()
    history = model.fit(X[train], y[train], epochs=args.epochs, lr=args.lr, lr_schedule="cosine", progress=False)
    return model.score(X[test], y[test]), history.history["train_loss"], timer()


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--hidden", type=int, default=64, help="hidden units of the recurrent layer and of the MLP")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--lr", type=float, default=0.01, help="Adam's initial learning rate (cosine schedule)")
    args = p.parse_args()
    if args.quick:
        args.epochs = 3
    X, y, train, test = load_digits(args.quick, args.seed)
    print(f"{len(train)} training and {len(test)} test images of 8x8 pixels")

    mlp = MLPClassifier(input_size=64, hidden_size=args.hidden, seed=args.seed)
    mlp_accuracy, mlp_losses, _ = fit_and_score(mlp, X, y, train, test, args)
    curves = {"MLP (64 pixels at once)": mlp_losses}
    results, predictions = {}, {}
    for reading, (steps, size) in READINGS.items():
        model = SequenceClassifier(input_size=size, hidden_size=args.hidden, cell=args.cell, seed=args.seed)
        X_steps = X.reshape(-1, steps, size)
        accuracy, losses, seconds = fit_and_score(model, X_steps, y, train, test, args)
        curves[f"{args.cell.upper()}, {reading} ({steps} steps)"] = losses
        results[reading] = accuracy, seconds
        predictions[reading] = model.predict(X_steps[test[:15]])

    print("true label:       ", *y[test[:15]])
    for reading, predicted in predictions.items():
        print(f"predicted, {reading:6s}:", *predicted)
    _common.plot(curves, args.out / "digits.png", title="digits", ylabel="training loss", logy=True)
    for reading, (accuracy, seconds) in results.items():
        steps, size = READINGS[reading]
        _common.report(args, f"digits_{reading}", task=f"digits, {reading} ({steps} steps x {size})",
                       paradigm="many to one", cell=args.cell, metric="test accuracy", result=accuracy,
                       baseline=mlp_accuracy, baseline_name="MLP on all 64 pixels", seconds=seconds,
                       extra={"train": len(train), "test": len(test), "epochs": args.epochs,
                              "hidden_size": args.hidden, "lr": args.lr})


if __name__ == "__main__":
    main()
