"""Sunspots: forecast next year's sunspot number from the years before it.

Task
    One-step-ahead forecasting, many to one: an LSTM
    (:class:`rnncore.models.SequenceRegressor`) reads the last ``--window``
    yearly values (12 by default, about one 11-year solar cycle) and
    predicts the next one.
Data
    ``statsmodels.datasets.sunspots``: the yearly mean sunspot number,
    1700-2008 (309 values).  statsmodels ships no monthly series, so this
    example is yearly.  The values are square-rooted (the usual variance
    stabilisation for counts) and standardised with the mean and standard
    deviation of the training years; forecasts are squared back.
Split
    Chronological: the last 20% of the years (1947-2008, 62 forecasts) are
    the test set; the models train on the targets before 1947 only.  Each
    forecast reads the true values of the years before it.
Model
    The mean of ``--models`` LSTMs that differ only in their seed (one
    LSTM alone varies by a few RMSE points from seed to seed).
Metric
    Test RMSE in sunspot number (MAE too), against persistence (next year
    = this year).  A linear AR(p) model fitted by least squares on the
    same square-rooted series, with p <= window chosen by AIC on the
    training years, is printed beside it: it is the strong baseline here.
Command
    ``python examples/sunspots.py`` (``--quick``: one model, a few epochs)
"""

import _common  # first: caps NumPy's BLAS threads

import numpy as np

from rnncore.models import SequenceRegressor

TEST_FRACTION = 0.2


def load() -> tuple:
    """The years and the yearly sunspot numbers."""
    sunspots = _common.require("statsmodels.datasets.sunspots")
    data = sunspots.load_pandas().data
    return data["YEAR"].to_numpy(int), data["SUNACTIVITY"].to_numpy(float)


def windows(z: np.ndarray, window: int) -> np.ndarray:
    """The ``window`` values before each target ``z[window:]``, as ``[N, window, 1]``."""
    return np.lib.stride_tricks.sliding_window_view(z[:-1], window)[..., None].copy()


def autoregression(g: np.ndarray, train: np.ndarray, test: np.ndarray, max_order: int) -> tuple:
    """Least-squares AR(p) forecasts of ``g[test]``, with the order p in
    ``1..max_order`` that minimises the AIC on the targets ``g[train]``."""
    def design(p, idx):
        return np.column_stack([g[idx - k] for k in range(1, p + 1)] + [np.ones(len(idx))])

    best = None
    for p in range(1, max_order + 1):
        A = design(p, train)
        coef = np.linalg.lstsq(A, g[train], rcond=None)[0]
        rss = float(((A @ coef - g[train]) ** 2).sum())
        aic = len(train) * np.log(rss / len(train)) + 2 * (p + 1)
        if best is None or aic < best[0]:
            best = (aic, p, coef)
    _, p, coef = best
    return p, design(p, test) @ coef


def errors(predicted: np.ndarray, truth: np.ndarray) -> tuple:
    """RMSE and MAE."""
    return float(np.sqrt(np.mean((predicted - truth) ** 2))), float(np.mean(np.abs(predicted - truth)))


def plot_forecast(path, years, truth, forecasts: dict) -> None:
    """A PNG of the test years: the truth and each forecast."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return  # _common.plot has already said that matplotlib is missing
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    ax.plot(years, truth, color="black", lw=2, label="observed")
    for name, values in forecasts.items():
        ax.plot(years, values, marker=".", label=name)
    ax.set_xlabel("year")
    ax.set_ylabel("sunspot number")
    ax.set_title("one-year-ahead forecasts on the test years")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100)
    print(f"forecasts: {path}")


def main() -> None:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("--window", type=int, default=12, help="past years read per forecast")
    p.add_argument("--models", type=int, default=5, help="LSTMs averaged (each with its own seed)")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--hidden", type=int, default=32)
    args = p.parse_args()
    if args.quick:
        args.models, args.epochs = 1, 15
    timer = _common.Timer()

    years, y = load()
    g = np.sqrt(y)
    cut = len(y) - int(round(TEST_FRACTION * len(y)))  # the first test year's index
    mean, std = g[:cut].mean(), g[:cut].std()
    z = (g - mean) / std
    X, targets = windows(z, args.window), np.arange(args.window, len(y))
    train, test = targets < cut, targets >= cut
    print(f"{len(y)} years {years[0]}-{years[-1]}: {train.sum()} training forecasts, "
          f"{test.sum()} test forecasts ({years[cut]}-{years[-1]}), window {args.window}")

    forecasts, curves = [], {}
    for k in range(args.models):
        seed = args.seed * args.models + k
        model = SequenceRegressor(input_size=1, hidden_size=args.hidden, seed=seed)
        history = model.fit(X[train], z[targets[train]], epochs=args.epochs, batch_size=16, lr=3e-3,
                            lr_schedule="cosine", progress=False)
        curves[f"LSTM seed {seed}"] = history.history["train_loss"]
        forecasts.append(np.maximum(model.predict(X[test]) * std + mean, 0) ** 2)
    lstm = np.mean(forecasts, axis=0)
    order, ar = autoregression(g, targets[train], targets[test], args.window)
    ar = np.maximum(ar, 0) ** 2
    truth, persistence = y[targets[test]], y[targets[test] - 1]

    rmse, mae = errors(lstm, truth)
    ar_rmse, ar_mae = errors(ar, truth)
    persistence_rmse, persistence_mae = errors(persistence, truth)
    print(f"{'year':>6} {'observed':>9} {'LSTM':>7} {f'AR({order})':>7} {'persist':>8}")
    for i in np.linspace(0, test.sum() - 1, 6).astype(int):
        print(f"{years[targets[test]][i]:>6} {truth[i]:>9.1f} {lstm[i]:>7.1f} {ar[i]:>7.1f} {persistence[i]:>8.1f}")
    print(f"test RMSE / MAE: LSTM{'s' if args.models > 1 else ''} {rmse:.2f} / {mae:.2f}, "
          f"AR({order}) {ar_rmse:.2f} / {ar_mae:.2f}, persistence {persistence_rmse:.2f} / {persistence_mae:.2f}")

    _common.plot(curves, args.out / "sunspots.png", title="sunspots: training loss (standardised sqrt scale)",
                 ylabel="mean squared error", logy=True)
    plot_forecast(args.out / "sunspots_forecast.png", years[targets[test]], truth,
                  {f"LSTM (mean of {args.models})": lstm, f"AR({order})": ar, "persistence": persistence})
    _common.report(args, "sunspots", task="sunspot number, next year", paradigm="many to one", cell="LSTM",
                   metric="test RMSE", result=rmse, baseline=persistence_rmse, baseline_name="persistence",
                   higher_is_better=False, seconds=timer(),
                   extra={"mae": mae, "persistence_mae": persistence_mae, "ar_order": order, "ar_rmse": ar_rmse,
                          "ar_mae": ar_mae, "member_rmse": [errors(f, truth)[0] for f in forecasts],
                          "window": args.window, "models": args.models, "epochs": args.epochs,
                          "test_years": f"{years[cut]}-{years[-1]}"})


if __name__ == "__main__":
    main()
