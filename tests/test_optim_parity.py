"""Scratch optimizers vs torch.optim, in float64, 200 steps, same initial params and batches,
on two problems: a small MLP (8-16-3, ReLU, cross-entropy) and seed 001's linear regression
(w = [2, -3.4], b = 4.2, 1000 examples, noise 0.01, Linear(2, 1), loss (y_hat - y)^2 / 2).

Both sides are built by ``build_optimizer`` from the same config hyperparameters (the seed
defaults of conf/optimizer/<name>.yaml plus the overrides shown), so the registry's
key mapping to torch arguments is under test too.

Distance between two parameter lists, ``rel``: the largest, over tensors, of
max|a - b| / max|b| (a difference relative to the tensor's scale). Exact-parity cases
are checked elementwise instead: |a - b| <= 1e-6 * |b| for every entry.

Measured with torch 2.15 on CPU (these are the numbers in the README section
"Scratch vs torch.optim: parity"):
  * exact parity: sgd, adadelta, rmsprop and adagrad at eps = 0: bitwise equal; momentum,
    rmsprop with momentum / centered, adam at eps = 0: elementwise relative <= 1.1e-12,
    ``rel`` <= 1.8e-15 (rounding only).
  * eps placement at the seeds' eps, after 200 steps, ``rel`` (asserted bound in brackets):
        MLP:    rmsprop 1.0e-4 (< 1e-3),   adagrad 4.7e-3 (< 2e-2),   adam 2.6e-4 (< 2e-3)
        linreg: rmsprop 6.6e-11 (< 5e-10), adagrad 1.1e-11 (< 1e-10), adam 6.7e-9 (< 5e-8)
    The MLP gap is larger because some of its gradient coordinates are tiny (a ReLU unit
    that rarely fires): where s is not >> eps the two denominators differ a lot (torch's
    step lr*g/(sqrt(s)+eps) is up to 1/sqrt(eps) times the seeds' lr*g/sqrt(s+eps)), and
    the MLP's dynamics carry that on. Linear regression has no tiny gradients (noise 0.01
    keeps s >> eps), so the per-step ratio stays within ~eps/(2s) of 1.
  * eps_in_sqrt=false (torch's placement in the scratch formula): rmsprop and adagrad bitwise
    equal to torch, adam and rmsprop with momentum/centered/weight decay elementwise <= 8e-15.
"""

from __future__ import annotations

import pytest
import torch
from optim_cases import mlp, one_thread, params_of, seed_hparams  # noqa: F401  (one_thread: autouse fixture)
from torch import nn

from optbench.optim.registry import build_optimizer

STEPS = 200


# ---- the two problems: (model, batches, loss) with fixed data and init ----------------
def mlp_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (512,), generator=g)
    model = mlp(seed=1)
    batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 512, 32)]
    return model, batches, nn.functional.cross_entropy


def linreg_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 2, generator=g, dtype=torch.float64)
    noise = 0.01 * torch.randn(1000, generator=g, dtype=torch.float64)
    y = (x @ torch.tensor([2.0, -3.4], dtype=torch.float64) + 4.2 + noise).unsqueeze(1)
    torch.manual_seed(1)
    model = nn.Linear(2, 1).double()
    batches = [(x[i : i + 10], y[i : i + 10]) for i in range(0, 1000, 10)]
    return model, batches, lambda y_hat, y: ((y_hat - y) ** 2 / 2).mean()


PROBLEMS = {"mlp": mlp_problem, "linreg": linreg_problem}


def step(model, opt, batches, loss_fn, t):
    x, y = batches[t % len(batches)]
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()


def run(problem, name, impl, hparams, steps=STEPS, schedule=None):
    model, batches, loss_fn = PROBLEMS[problem]()
    opt = build_optimizer(model.parameters(), name, impl, hparams)
    sched = schedule(opt) if schedule else None
    for t in range(steps):
        step(model, opt, batches, loss_fn, t)
        if sched:
            sched.step()
    return model, opt


def rel(a, b) -> float:
    return max(((x - y).abs().max() / y.abs().max()).item() for x, y in zip(a, b))


# ---- exact parity ------------------------------------------------------------------
# (name, overrides, why the overrides): eps = 0 maps the seeds' eps-inside-sqrt onto
# torch's eps-outside (both become g/sqrt(s)); no coordinate here has s = 0 exactly
# (that would be 0/0 on both sides; a tiny eps such as 1e-30 would then do instead).
EXACT = [
    ("sgd", {}, "same update"),
    ("momentum", {}, "constant lr: seed v = lr * torch buffer"),
    ("adadelta", {}, "eps inside both square roots on both sides; seed eps"),
    ("adadelta", {"weight_decay": 1e-2, "lr": 0.5}, "weight decay added to g on both sides"),
    ("rmsprop", {"eps": 0.0}, "eps placement differs: eps = 0"),
    ("rmsprop", {"eps": 0.0, "momentum": 0.9}, "eps = 0; constant lr: seed v = lr * torch buffer"),
    ("rmsprop", {"eps": 0.0, "centered": True}, "eps = 0"),
    ("rmsprop", {"eps": 0.0, "momentum": 0.5, "centered": True, "weight_decay": 1e-2}, "eps = 0"),
    ("adagrad", {"eps": 0.0}, "eps placement differs: eps = 0"),
    ("adam", {"eps": 0.0}, "eps placement differs: eps = 0"),
    ("adam", {"eps": 0.0, "weight_decay": 1e-2}, "eps = 0"),
]


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("name, override, why", EXACT, ids=[f"{n}-{'-'.join(o) or 'seed'}" for n, o, _ in EXACT])
def test_exact_parity(problem, name, override, why):
    hp = seed_hparams(name, **override)
    scratch, _ = run(problem, name, "scratch", hp)
    builtin, _ = run(problem, name, "builtin", hp)
    a, b = params_of(scratch), params_of(builtin)
    assert all(torch.isfinite(p).all() for p in a)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=0)
    assert rel(a, b) < 1e-12  # what is actually achieved: rounding only


def test_momentum_velocity_is_lr_times_torch_buffer():
    """With constant lr the seed's velocity is lr times torch's momentum_buffer (by induction
    from v = b = 0: v' = m*v + lr*g = lr*(m*b + g) = lr*b')."""
    hp = seed_hparams("momentum")
    scratch, opt_s = run("mlp", "momentum", "scratch", hp)
    builtin, opt_t = run("mlp", "momentum", "builtin", hp)
    for p, q in zip(scratch.parameters(), builtin.parameters()):
        v, b = opt_s.state[p]["velocity"], opt_t.state[q]["momentum_buffer"]
        torch.testing.assert_close(v, hp["lr"] * b, rtol=1e-6, atol=1e-18)


# ---- eps inside vs outside the sqrt --------------------------------------------------
# The scratch state key names are torch's, so a torch state can be copied over.
STATE_KEYS = {"rmsprop": ("square_avg",), "adagrad": ("sum",), "adam": ("step", "exp_avg", "exp_avg_sq")}


def second_moment(name, state, hp):
    """The s under the square root after the step (bias-corrected s_hat for adam)."""
    if name == "adam":
        return state["exp_avg_sq"] / (1 - hp["beta2"] ** int(state["step"]))
    return state[STATE_KEYS[name][0]]


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("name", ["rmsprop", "adagrad", "adam"])
def test_eps_placement_single_step_is_exactly_predicted(problem, name):
    """From the same state and gradient, at the seeds' eps, each coordinate's scratch step
    is torch's step times (sqrt(s) + eps) / sqrt(s + eps), s being the updated second
    moment (s_hat for adam): seeds divide by sqrt(s + eps), torch by sqrt(s) + eps.
    The ratio lies in (sqrt(eps), 1 + eps]: the scratch step is never larger by more than a
    factor 1 + eps, and is smaller wherever s is not >> eps (1 - ratio ~ eps / (2 s)).

    To see steps as small as 1e-13 of themselves, both models get the gradient of the
    same batch at the same params and then have their params set to 0 before the step
    (the update does not depend on theta without weight decay), so -theta_new is the step
    itself, free of the rounding of theta + step."""
    hp = seed_hparams(name)
    torch_model, torch_opt = run(problem, name, "builtin", hp, steps=20)  # a non-trivial state
    model, batches, loss_fn = PROBLEMS[problem]()
    model.load_state_dict(torch_model.state_dict())
    opt = build_optimizer(model.parameters(), name, "scratch", hp)
    for p, q in zip(model.parameters(), torch_model.parameters()):
        opt.state[p] = {k: int(v) if k == "step" else v.clone() for k, v in torch_opt.state[q].items()
                        if k in STATE_KEYS[name]}
    x, y = batches[20 % len(batches)]
    torch_opt.zero_grad()
    loss_fn(torch_model(x), y).backward()
    with torch.no_grad():
        for p, q in zip(model.parameters(), torch_model.parameters()):
            p.grad = q.grad.clone()
            p.zero_()
            q.zero_()
    opt.step()
    torch_opt.step()
    eps, worst = hp["eps"], 0.0
    for p, q in zip(model.parameters(), torch_model.parameters()):
        s = second_moment(name, torch_opt.state[q], hp)
        assert torch.equal(second_moment(name, opt.state[p], hp), s)
        ratio = (s.sqrt() + eps) / (s + eps).sqrt()
        torch.testing.assert_close(-p.detach(), -q.detach() * ratio, rtol=2e-15, atol=0)
        assert (ratio <= 1 + eps).all()
        worst = max(worst, (1 - ratio).abs().max().item())
    assert worst > 1e-12  # the predicted effect is far above the 2e-15 tolerance: not vacuous


# bounds on rel(scratch, torch) after 200 steps at the seeds' eps (measured values above)
EPS_BOUNDS = {
    ("mlp", "rmsprop"): 1e-3, ("mlp", "adagrad"): 2e-2, ("mlp", "adam"): 2e-3,
    ("linreg", "rmsprop"): 5e-10, ("linreg", "adagrad"): 1e-10, ("linreg", "adam"): 5e-8,
}


@pytest.mark.parametrize("problem, name", EPS_BOUNDS)
def test_eps_placement_bounded_over_200_steps(problem, name):
    """At the seeds' eps (rmsprop/adagrad 1e-10, adam 1e-8) the trajectories differ, and by
    at most the bound stated in EPS_BOUNDS / the module docstring."""
    hp = seed_hparams(name)
    a = params_of(run(problem, name, "scratch", hp)[0])
    b = params_of(run(problem, name, "builtin", hp)[0])
    gap = rel(a, b)
    assert 1e-14 < gap < EPS_BOUNDS[problem, name]


# ---- momentum under an lr schedule ---------------------------------------------------
def test_momentum_with_steplr_differs_as_seed_math_predicts():
    """StepLR drops lr0 = 1e-2 to lr1 = 1e-3 after 100 steps. Up to then both forms agree
    (v = lr0 * b). On the first step after the change the seed computes
    v' = m*v + lr1*g = m*lr0*b + lr1*g, torch lr1*b' = m*lr1*b + lr1*g, so the two new
    params differ by exactly -(v' - lr1*b') = -m*(lr0 - lr1)*b. Afterwards they keep differing."""
    hp = seed_hparams("momentum")
    m, lr0, lr1 = hp["momentum"], hp["lr"], hp["lr"] * 0.1
    sched = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.1)  # noqa: E731
    s_model, s_opt = run("mlp", "momentum", "scratch", hp, steps=100, schedule=sched)
    t_model, t_opt = run("mlp", "momentum", "builtin", hp, steps=100, schedule=sched)
    assert s_opt.param_groups[0]["lr"] == t_opt.param_groups[0]["lr"] == pytest.approx(lr1)
    assert rel(params_of(s_model), params_of(t_model)) < 1e-12  # identical until the change

    buffers = [t_opt.state[q]["momentum_buffer"].clone() for q in t_model.parameters()]
    velocities = [s_opt.state[p]["velocity"].clone() for p in s_model.parameters()]
    s_before, t_before = params_of(s_model), params_of(t_model)
    _, batches, loss_fn = mlp_problem()
    step(s_model, s_opt, batches, loss_fn, 100)
    step(t_model, t_opt, batches, loss_fn, 100)
    for p0, p, q0, q, v, b in zip(s_before, s_model.parameters(), t_before, t_model.parameters(),
                                  velocities, buffers):
        g = t_opt.state[q]["momentum_buffer"] - m * b  # the gradient both saw
        torch.testing.assert_close(p - p0, -(m * v + lr1 * g), rtol=1e-9, atol=1e-15)  # seed form
        torch.testing.assert_close(q - q0, -lr1 * (m * b + g), rtol=1e-9, atol=1e-15)  # torch form
        torch.testing.assert_close(p - q, -m * (lr0 - lr1) * b, rtol=1e-6, atol=1e-15)

    for t in range(101, 200):
        step(s_model, s_opt, batches, loss_fn, t)
        step(t_model, t_opt, batches, loss_fn, t)
    assert rel(params_of(s_model), params_of(t_model)) > 1e-4


def test_momentum_with_steplr_closed_form_on_a_linear_loss():
    """On loss = c . theta the gradient is c whatever theta is, so both runs see the same
    gradients and the gap has a closed form. After K steps at lr0 the torch buffer is
    b_K = c (1 - m^K) / (1 - m) and the seed velocity lr0 * b_K; after n more at lr1 the
    seed params minus the torch params are -(lr0 - lr1) * b_K * m (1 - m^n) / (1 - m)."""
    c = torch.tensor([1.0, -2.0, 0.5, 3.0, -0.25], dtype=torch.float64)
    hp = seed_hparams("momentum")
    m, lr0, K, n = hp["momentum"], hp["lr"], 15, 15  # n <= K: StepLR changes lr once only
    lr1 = lr0 * 0.1
    finals = {}
    for impl in ("scratch", "builtin"):
        theta = nn.Parameter(torch.zeros(5, dtype=torch.float64))
        opt = build_optimizer([theta], "momentum", impl, hp)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=K, gamma=0.1)
        for _ in range(K + n):
            opt.zero_grad()
            (c @ theta).backward()
            opt.step()
            sched.step()
        finals[impl] = theta.detach()
    b_k = c * (1 - m**K) / (1 - m)
    predicted = -(lr0 - lr1) * b_k * m * (1 - m**n) / (1 - m)
    torch.testing.assert_close(finals["scratch"] - finals["builtin"], predicted, rtol=1e-9, atol=0)


# ---- eps_in_sqrt=false: the scratch formula with torch's eps placement -----------------
# (name, overrides): the seeds' eps, then a large eps (where the placement matters most),
# then RMSProp's optional branches and Adam's weight decay with it
EPS_OUTSIDE = [
    ("rmsprop", {}), ("rmsprop", {"eps": 1e-3}),
    ("rmsprop", {"eps": 1e-3, "momentum": 0.5, "centered": True, "weight_decay": 1e-2}),
    ("adagrad", {}), ("adagrad", {"eps": 1e-3}),
    ("adam", {}), ("adam", {"eps": 1e-3, "weight_decay": 1e-2}),
]


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("name, override", EPS_OUTSIDE,
                         ids=[f"{n}-{'-'.join(o) or 'seed'}" for n, o in EPS_OUTSIDE])
def test_eps_outside_the_sqrt_equals_torch(problem, name, override):
    """optimizer.eps_in_sqrt=false: scratch divides by sqrt(s) + eps like torch.optim, and the
    200-step float64 trajectories agree elementwise within 1e-6 relative (rounding only),
    where the seeds' placement (eps_in_sqrt null/true) does not, at the same eps."""
    hp = seed_hparams(name, eps_in_sqrt=False, **override)
    builtin = params_of(run(problem, name, "builtin", hp)[0])
    scratch = params_of(run(problem, name, "scratch", hp)[0])
    assert all(torch.isfinite(p).all() for p in scratch)
    for x, y in zip(scratch, builtin):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=0)
    assert rel(scratch, builtin) < 1e-12
    seeds = params_of(run(problem, name, "scratch", {**hp, "eps_in_sqrt": True})[0])
    assert rel(seeds, builtin) > 1e-12  # not vacuous (measured >= 1.1e-11): the flag makes them agree
