"""Convergence checks: published complaints about mixture-density networks, as tests.

1. Bishop's inverse problem (Bishop 1994, "Mixture density networks"): the forward
   map t = x + 0.3 sin(2 pi x) + U(-0.1, 0.1), x ~ U(0, 1), is single-valued, but
   predicting x from t is multi-valued (three branches for t near 0.5). A
   least-squares net returns the conditional mean, which can fall where no data
   are; a small MDN must put mass on every branch and none in the gaps, from 5 of
   5 seeds.

   Reference numbers: p(x | t) is uniform on S(t) = {x : |f(x) - t| < 0.1}, so the
   best attainable held-out NLL is E_t[log |S(t)|] = -1.29 nats (numerically).
   The bound tested here is -0.95 (a K=4 MDN with 32 tanh units reaches about
   -1.01 to -1.08 across seeds; a Gaussian around the least-squares fit gets
   about -0.4). Branch windows are +-0.05 around the noise-free roots of
   f(x) = 0.5 (x = 0.2105, 0.5, 0.7895), each holding 14.5 % of the true
   conditional; the gaps at t = 0.35 and t = 0.65 hold none.

2. A 2D target with correlation rho = +-0.8 is recovered to +-0.05.

Held-out NLLs are printed (``pytest -s`` shows them).
"""


import numpy as np
import pytest

from overlap_relevance.model.mixture import mixture_from_raw

# TensorFlow tests run in their own pytest process without QGIS (see test/model/training/conftest.py).
tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
from overlap_relevance.model.training.mixture_layers import MixtureHead, make_mixture_nll, mixture_nll



# --- Bishop's inverse problem --------------------------------------------------------------

SEEDS = (0, 1, 2, 3, 4)
COMPONENTS = 4
HIDDEN_UNITS = 32
TRAIN_STEPS = 2500
LEARNING_RATE = 0.02
NLL_BOUND = -0.95  # nats; optimum -1.29, see the module docstring
BRANCH_ROOTS = (0.2105, 0.5, 0.7895)  # f(x) = 0.5, f(x) = x + 0.3 sin(2 pi x)
BRANCH_HALF_WIDTH = 0.05
MIN_BRANCH_SHARE = 0.10  # truth: 0.145 per window
GAPS = {0.35: (0.19, 0.55), 0.65: (0.45, 0.81)}  # t -> x interval with zero true density
MAX_GAP_SHARE = 0.12  # truth: 0


def bishop_data(n, rng):
    """(t, x) pairs as float32 columns ``(n, 1)``: x ~ U(0, 1), t = x + 0.3 sin(2 pi x) + U(-0.1, 0.1)."""
    x = rng.uniform(0.0, 1.0, n)
    t = x + 0.3 * np.sin(2 * np.pi * x) + rng.uniform(-0.1, 0.1, n)
    return t[:, None].astype("float32"), x[:, None].astype("float32")


def train_full_batch(model, loss_fn, inputs, targets, steps, learning_rate):
    """Full-batch Adam with cosine decay, ``steps`` steps in one compiled loop body."""
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05))
    inputs, targets = tf.constant(inputs), tf.constant(targets)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(targets, model(inputs, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    for _ in range(steps):
        loss = step()
    return float(loss)


def tanh_net(outputs_layer, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((1,))
    hidden = keras.layers.Dense(HIDDEN_UNITS, activation="tanh")(inputs)
    return keras.Model(inputs, outputs_layer(hidden))


def branch_and_gap_shares(samples_at):
    """Shares of samples in each branch window (t = 0.5) and in the gaps (t = 0.35, 0.65)."""
    branch = [np.mean(np.abs(samples_at[0.5] - root) < BRANCH_HALF_WIDTH) for root in BRANCH_ROOTS]
    gap = [np.mean((samples_at[t] > lo) & (samples_at[t] < hi)) for t, (lo, hi) in GAPS.items()]
    return branch, gap


@pytest.fixture(scope="module")
def bishop_split():
    rng = np.random.default_rng(2024)
    return bishop_data(2000, rng), bishop_data(5000, rng)


def test_bishop_mdn_covers_every_branch_from_every_seed(bishop_split):
    (t_train, x_train), (t_test, x_test) = bishop_split
    query_t = np.array([[0.5], [0.35], [0.65]], dtype="float32")
    results = []
    for seed in SEEDS:
        model = tanh_net(MixtureHead(COMPONENTS, 1), seed)
        train_full_batch(model, lambda y, raw: tf.reduce_mean(mixture_nll(y, raw, COMPONENTS, 1)),
                         t_train, x_train, TRAIN_STEPS, LEARNING_RATE)
        # evaluate through the NumPy inference path
        held_out = mixture_from_raw(model(t_test).numpy(), COMPONENTS, 1)
        nll = float(-np.mean(held_out.log_prob(x_test[:, 0])))
        queries = mixture_from_raw(model(query_t).numpy(), COMPONENTS, 1)
        draws = queries.sample(20_000, rng=seed)[..., 0]
        branch, gap = branch_and_gap_shares({0.5: draws[:, 0], 0.35: draws[:, 1], 0.65: draws[:, 2]})
        results.append((seed, nll, branch, gap))
    print("\nBishop inverse problem, MDN K=%d, %d tanh units, %d full-batch Adam steps" %
          (COMPONENTS, HIDDEN_UNITS, TRAIN_STEPS))
    for seed, nll, branch, gap in results:
        print(f"  seed {seed}: held-out NLL {nll:+.4f} nats | branch shares at t=0.5 "
              f"{np.round(branch, 3).tolist()} | gap shares at t=0.35/0.65 {np.round(gap, 3).tolist()}")
    for seed, nll, branch, gap in results:
        assert nll < NLL_BOUND, f"seed {seed}: held-out NLL {nll:.3f} above {NLL_BOUND}"
        assert min(branch) >= MIN_BRANCH_SHARE, f"seed {seed}: a branch is missed: {branch}"
        assert max(gap) <= MAX_GAP_SHARE, f"seed {seed}: mass in a gap: {gap}"


def test_least_squares_fit_averages_the_branches(bishop_split):
    (t_train, x_train), (t_test, x_test) = bishop_split
    model = tanh_net(keras.layers.Dense(1), seed=0)
    train_full_batch(model, lambda y, pred: tf.reduce_mean(tf.square(y - pred)), t_train, x_train,
                     TRAIN_STEPS, LEARNING_RATE)
    prediction = {t: float(model(np.array([[t]], dtype="float32")).numpy()[0, 0]) for t in (0.35, 0.5, 0.65)}
    # The conditional mean lands where the data have no mass.
    for t, (lo, hi) in GAPS.items():
        assert lo < prediction[t] < hi, f"least squares at t={t} gave {prediction[t]:.3f}"
    # Best Gaussian around it (sigma = training RMS residual): poor NLL, poor branch coverage.
    sigma = float(np.sqrt(np.mean((model(t_train).numpy() - x_train) ** 2)))
    residual = model(t_test).numpy()[:, 0] - x_test[:, 0]
    nll = float(np.mean(0.5 * (residual / sigma) ** 2 + np.log(sigma) + 0.5 * np.log(2 * np.pi)))
    rng = np.random.default_rng(0)
    draws = {t: prediction[t] + sigma * rng.standard_normal(20_000) for t in prediction}
    branch, gap = branch_and_gap_shares(draws)
    print(f"\nLeast squares + Gaussian(sigma={sigma:.3f}): held-out NLL {nll:+.4f} nats | branch shares "
          f"{np.round(branch, 3).tolist()} | gap shares {np.round(gap, 3).tolist()} | "
          f"predictions {({t: round(v, 3) for t, v in prediction.items()})}")
    assert nll > NLL_BOUND + 0.5  # the MDNs reach < -0.95; this is about -0.1
    assert min(gap) > 0.5  # most mass where the truth has none (MDNs: < 0.12)
    # a point prediction at t = 0.5 sits on one branch at most
    assert sum(abs(prediction[0.5] - root) < BRANCH_HALF_WIDTH for root in BRANCH_ROOTS) <= 1


# --- correlated 2D target ---------------------------------------------------------------------

@pytest.mark.parametrize("rho", [0.8, -0.8])
def test_correlated_2d_target_is_recovered(rho):
    rng = np.random.default_rng(7)
    mean = np.array([1.0, -2.0])
    sigmas = np.array([1.5, 0.5])
    covariance = np.array([[sigmas[0] ** 2, rho * sigmas[0] * sigmas[1]],
                           [rho * sigmas[0] * sigmas[1], sigmas[1] ** 2]])
    targets = rng.multivariate_normal(mean, covariance, size=4000).astype("float32")
    features = np.ones((4000, 1), dtype="float32")
    keras.utils.set_random_seed(3)
    inputs = keras.Input((1,))
    model = keras.Model(inputs, MixtureHead(2, 2)(inputs))
    train_full_batch(model, make_mixture_nll(2, 2), features, targets, steps=400, learning_rate=0.05)
    mixture = mixture_from_raw(model.predict(features[:1], verbose=0), 2, 2)
    fitted = mixture.covariance()[0]
    fitted_sigmas = np.sqrt(np.diag(fitted))
    fitted_rho = fitted[0, 1] / (fitted_sigmas[0] * fitted_sigmas[1])
    print(f"\n2D target rho={rho:+.2f}: fitted rho {fitted_rho:+.4f}, sigmas {np.round(fitted_sigmas, 4).tolist()}, "
          f"mean {np.round(mixture.mean()[0], 4).tolist()}")
    assert fitted_rho == pytest.approx(rho, abs=0.05)
    np.testing.assert_allclose(fitted_sigmas, sigmas, rtol=0.05)
    np.testing.assert_allclose(mixture.mean()[0], mean, atol=0.1)
