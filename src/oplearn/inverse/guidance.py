r"""Observation guidance through a denoiser (DPS / FunDPS), with an optional PDE-residual term.

A diffusion prior is an EDM denoiser :math:`D(x, \sigma) \approx E[x_0 \mid x_0 + \sigma\epsilon = x]`
with forward noise :math:`\epsilon \sim \mathcal N(0, N)` (:math:`N = I` for white noise, the GRF
covariance of :class:`oplearn.diffusion.noise.GRFNoise` in function space). By Tweedie's formula
:math:`D(x, \sigma) = x + \sigma^2 N \nabla \log p_\sigma(x)`, so guidance, which adds an approximate
likelihood score :math:`\nabla_x \log p(y \mid x_\sigma)` to the prior's score, is the same as
replacing the denoiser by

.. math::

    D_g(x, \sigma) = D(x, \sigma) + \sigma^2 N \nabla_x \log p(y \mid x_\sigma),

so any sampler of :mod:`oplearn.diffusion.samplers` runs guided by wrapping the denoiser.
The factor :math:`N` matters in function space: a likelihood gradient at observed points is
a sum of spikes, which :math:`N` turns into the smooth fields the GRF noise moves along;
without it the spikes are high-frequency content that the denoiser, trained with almost no
noise at high wavenumbers, never removes (on the trained Darcy prior of
``benchmarks/inverse_darcy.py`` it cut the error of the posterior mean by half or more). With the DPS approximation :math:`p(y \mid x_\sigma) \approx p(y \mid \hat x_0)`,
:math:`\hat x_0 = D(x, \sigma)`, and :math:`r = y - A\,\Phi(\hat x_0)` the residual of the
observed fields :math:`\Phi(\hat x_0)` (see ``fields`` below),

.. math::

    D_g(x, \sigma) = \hat x_0 - N \big(\lambda(\sigma)\, \nabla_x \tfrac12 \lVert r \rVert^2
                     + w_{pde}\, \sigma^2\, \nabla_x \log \lVert R(\Phi(\hat x_0)) \rVert\big),

where the gradient flows through the denoiser (a vector-Jacobian product) and ``scale``
chooses :math:`\lambda`:

``"likelihood"``
    :math:`\lambda = w \sigma^2 / s^2`, the Gaussian likelihood of noise level :math:`s` (plain
    DPS in score form). Exact only as :math:`\sigma \to 0`; it ignores the uncertainty of
    :math:`\hat x_0`, over-weights the data at large :math:`\sigma` and needs :math:`s > 0`.
``"normalized"``
    :math:`\lambda = w \sigma^2 / (s^2 + \overline{r^2})`, with :math:`\overline{r^2}` the mean
    squared residual (held constant in the gradient). Under a Gaussian approximation
    :math:`x_0 \mid x_\sigma \sim \mathcal N(\hat x_0, \rho^2 I)` the expected squared residual is
    :math:`s^2 + \rho^2`, so this is that likelihood with :math:`\rho` estimated from the
    residual; like the step :math:`\zeta / \lVert r \rVert` of DPS and FunDPS it makes :math:`w`
    independent of the scale of the data. With correlated (GRF) noise the
    smoothed point gradients overlap and add up, so the best :math:`w` is below 1: the default
    is :data:`DEFAULT_WEIGHT` of the noise kind (0.3 for GRF noise, tuned on Darcy at 64x64 with
    500 points: 0.1 and 0.6 were worse, 1 diverges on small priors).
``"covariance"``
    The Gaussian likelihood with the *Tweedie covariance*
    :math:`\mathrm{Cov}[x_0 \mid x_\sigma] = \sigma^2 J N`, :math:`J = \partial D / \partial x`, in place of
    DPS's isotropic one: the posterior denoiser

    .. math:: D_g = \hat x_0 + \sigma^2 J N B^\top z, \qquad
              (\sigma^2 B J N B^\top + s^2 I + \mu I)\, z = r,

    :math:`B` the Jacobian of :math:`x_0 \mapsto A\Phi(x_0)` at :math:`\hat x_0`. For a Gaussian prior
    and an affine :math:`\Phi` (with :math:`\mu = 0`) this is the exact posterior denoiser
    :math:`E[x_0 \mid x_\sigma, y]`, so an accurate ODE sampler draws exact posterior samples;
    :math:`w` is not used. It is the default (see "Covariance guidance" below). Supports no PDE term.

**Covariance guidance** (``scale="covariance"``). Every product the step needs is a product
with :math:`J N`: :math:`J N B^\top v` is the forward difference
:math:`(D(x + \epsilon N B^\top v) - D(x)) / \epsilon`, one network pass without a graph, and
:math:`B J N B^\top v` follows from it through :math:`A\Phi`. The :math:`m \times m` system is
solved by GMRES, which minimises the residual over the Krylov space
:math:`\{r, M r, \dots\}` for any :math:`M`: a trained network's :math:`J N` is neither symmetric
nor positive definite (conjugate gradients on the transposed form :math:`\sigma^2 N J^\top`,
the earlier exact step, went to NaN on the trained Darcy prior), and GMRES's residual can only
decrease with each direction. No vector-Jacobian product through the network is needed:
LSQR or CG on the normal equations would need one per iteration (about two passes each) and
converge with the square of the condition number. Three things make a few iterations enough:

* right preconditioning by :math:`P = \sigma^2 B N B^\top + s^2 + \mu`, the system at
  :math:`J = I`, which it approaches as :math:`\sigma \to 0` (the :math:`m \times m` matrix
  :math:`B N B^\top` is built once, from :math:`m` products with :math:`N`, and diagonalised);
* a warm start from the previous call's :math:`z` (the systems of successive steps differ little),
  rescaled by the factor that minimises the residual along it: where :math:`\sigma^2 B N B^\top`
  dominates, :math:`z` grows as :math:`1 / \sigma^2` from step to step: on the 32x32 problem
  observing u at 500 points the unscaled warm start left 31-43% of :math:`\lVert r \rVert` to
  GMRES at :math:`0.4 < \sigma < 5`, the rescaled one 15-19% (the factor costs nothing: the warm
  start's product is computed anyway);
* iterations that stop once the residual falls below :data:`GMRES_TOLERANCE` (1e-2) of
  :math:`\lVert r \rVert`: at large :math:`\sigma` 3-6 iterations reach it, so the cap is spent where the
  preconditioner is poor (on the 32x32 problem observing f at 500 points, 12 iterations to 1e-2
  took 203 passes per trajectory and gave 0.97 times the Bayes-optimal error, 8 to 1e-3 took
  197 and gave 1.10-1.15).

The sampler starts centred on the guided posterior mean (:meth:`GuidedDenoiser.start`).

``krylov`` caps the iterations per call (default :data:`DEFAULT_KRYLOV`); what one call leaves
unsolved the next one, with a fresh residual, continues. ``damping`` sets
:math:`\mu = \delta \sigma^2 \bar\lambda`, :math:`\bar\lambda` the mean eigenvalue of
:math:`B N B^\top`: a fraction :math:`\delta` of the observed noise variance at level
:math:`\sigma`, which would bound the condition number by :math:`1 / \delta`; it biases the
posterior (on the 32x32 problem observing u at 500 points, :math:`\delta = 10^{-3}` raised the
error from 1.04 to 1.25 times the Bayes-optimal one), so the default is 0, and the iteration
cap alone regularises. On the exact linear-Gaussian Poisson problems (BENCHMARKS.md) these
solves, not the sampler's steps, set the accuracy: against the converged ODE solution (40 steps,
GMRES to 1e-7) at 32x32, 20 DPM-Solver++(2M) steps with at most 12 iterations and 14 steps with
12 left the same bias (0.03-1.99 and 0.06-1.93 Monte Carlo errors), 12 steps with 20 iterations
0.06-0.66. The default, at most 16 iterations (:data:`DEFAULT_KRYLOV`) at 10 steps (``oplearn
inverse``), reaches the Bayes-optimal error within Monte Carlo error there, where DPS with
Krylov guidance is up to 1.8x off, at 124-180 network passes per trajectory and no
vector-Jacobian product through the network (Krylov guidance: 58-74 of each), in 0.9-1.6x its
time (20 steps with 12 iterations: 210-278 passes, 1.65-2.4x); the coarser steps widen the
sampled posterior (spread 1.14-1.29 times the exact one's, against 1.03-1.17 at 20 steps and 12). On
trained Darcy priors (30 epochs; epochs 8 and 24 of a 200-epoch run) it fits the observed field
best but recovers the coefficient from u 1.6-2x worse than Krylov guidance (coefficient error
rate 0.12 against 0.08 over 12 cases, 16 draws, at 30 epochs; 20 steps and 12 iterations, the
earlier default, not remeasured at 10 and 16): it moves the unobserved field only through the
network's cross block :math:`(J N)_{a,u}`, which is not the transpose of :math:`N J^\top` there
and points less toward the truth at large :math:`\sigma` than the block Krylov guidance uses;
substituting the transposed block, or symmetrising :math:`J N`, makes the step diverge (the
blocks of a trained network need not form a covariance). For such priors use
``scale="normalized"`` with ``krylov=4`` (BENCHMARKS.md).

**Step-matched guidance.** A sampler step from :math:`s` to :math:`t` moves the state by a
fraction :math:`\varphi = 1 - t/s` of :math:`D_g - x` (:mod:`oplearn.diffusion.samplers`), so it
moves the next denoised estimate's observed residual by :math:`-\varphi k r` along the guidance,
with the relaxation rate per unit of :math:`\log\sigma` (for the normalized and likelihood scales)

.. math:: k = \frac{r^\top B J c}{\lVert r\rVert^2} = \frac{\lambda\, g^\top N g}{\lVert r \rVert^2},
          \qquad g = \nabla_x \tfrac12 \lVert r \rVert^2,\ c = -\lambda N g,

(:math:`B` the Jacobian of :math:`x_0 \mapsto A\Phi(x_0)`, :math:`J` the denoiser's; no extra network evaluation). On a
trained Darcy prior :math:`k` reaches 10-80 at large :math:`\sigma`: the explicit step
overshoots unless :math:`\varphi k < 1`, which is why plain guidance needed 50 or more steps.
Given the sampler's ``schedule``, the correction :math:`c = D_g - \hat x_0` is scaled by

.. math:: f = \min\Big(1, \frac{1 - e^{-k h}}{k \varphi}\Big), \qquad h = \log(s / t),

the exact decay of the linear relaxation :math:`\dot r = -k r` over the step in place of
the explicit one (the exponential integrator treatment of a stiff term). As the steps shrink
:math:`f \to 1`: the ODE is the same, only its discretisation changes; on large steps the
guidance moves the residual at most to zero along its direction. :math:`t` is the schedule's
level after the largest one at or below :math:`\sigma`, the end of the step that starts at
:math:`\sigma` (or at the level that stochastic churn raised to :math:`\sigma`); for the step
to :math:`t = 0`, :math:`f = \min(1, 1/k)`. The corrected estimate is returned in two parts
(:meth:`GuidedDenoiser.split`) so that multistep samplers do not extrapolate the correction,
which jumps from step to step (:mod:`oplearn.diffusion.samplers`).

**Krylov guidance** (``krylov > 1``). The residual relaxes under the whole operator
:math:`K = \lambda G N G^\top` (:math:`G = BJ`, symmetric positive semi-definite by
construction), :math:`\dot r = -K r`, not along one direction. A single rate :math:`k` (its
Rayleigh quotient at :math:`r`) suits one part of a wide spectrum only: on the trained Darcy
prior the rates of successive steps range over 3-80 at :math:`\sigma > 1`, and a step tuned to
the mean rate overshoots the stiff directions and under-corrects the slow ones. The exact
linearised step is :math:`\varphi\,\lambda G N G^\top z = (I - e^{-hK}) r`, that is
:math:`z = f(K) r` with :math:`f(\theta) = \min(1, (1 - e^{-\theta h}) / (\theta\varphi))`, the
same factor applied per eigenvalue; :math:`z` is approximated in the Krylov space
:math:`\mathrm{span}\{r, Kr, \dots, K^{n-1} r\}` by Lanczos, :math:`z \approx \lVert r \rVert V_n f(T_n) e_1`
(:math:`T_n` tridiagonal, :math:`n \le` ``krylov``), and the correction is
:math:`c = \lambda N G^\top z`. One direction is the scalar step above. Each further direction
costs a vector-Jacobian product and a forward pass through the denoiser and ``fields``;
on the Darcy prior at most four directions per step (2.7 on average) give 20 DPM-Solver++(2M)
steps the posterior-mean accuracy of 200 one-direction Euler steps in 44% of their time
(BENCHMARKS.md).

The PDE term uses :meth:`oplearn.pdes.base.PDE.residual` of the fields split into the PDE's
inputs (the first ``len(pde.input_names)`` channels) and outputs (the rest); the gradient of
:math:`\log\lVert R \rVert` makes its weight independent of the residual's scale.

``fields`` maps the prior's space to the physical fields that are observed, ``(batch, C, *spatial)
-> (batch, C', *spatial)``: the prior's de-normalisation for a joint prior over all fields, or
:class:`DecoupledFields` (DDIS) for a prior on the coefficient alone with a trained forward
operator supplying the solution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from oplearn.errors import ConfigError
from oplearn.grids import Grid
from oplearn.inverse.observations import Observation
from oplearn.pdes.base import PDE

if TYPE_CHECKING:
    from oplearn.diffusion.noise import GRFNoise, WhiteNoise

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Fields = Callable[[torch.Tensor], torch.Tensor]

SCALES = ("likelihood", "normalized", "covariance")
#: The default scale: covariance guidance (module docstring).
DEFAULT_SCALE = "covariance"
#: The default guidance weight ``w`` per kind of forward noise (see ``"normalized"`` above).
DEFAULT_WEIGHT = {"white": 1.0, "grf": 0.3}
#: Relative change of the Krylov guidance step below which no further direction is added.
KRYLOV_TOLERANCE = 1e-2
#: Relative step of the forward differences of Krylov guidance: truncation and single-precision
#: rounding errors balance near it on the trained Darcy prior (whatever precision the network
#: computes in, it stays well above rounding).
DIFFERENCE_STEP = 1e-3
#: Default most Krylov directions per call: GMRES iterations of covariance guidance (with 10 sampler
#: steps, module docstring); the one-direction step of the normalized and likelihood scales
#: (``oplearn inverse`` uses 4 there).
DEFAULT_KRYLOV = {"covariance": 16, "normalized": 1, "likelihood": 1}
#: Relative residual of the covariance system at which GMRES stops.
GMRES_TOLERANCE = 1e-2
#: Default damping ``delta`` of covariance guidance (module docstring).
DEFAULT_DAMPING = 0.0
#: Smallest eigenvalue of :math:`B N B^\top` the preconditioner uses, relative to the largest.
PRECONDITIONER_FLOOR = 1e-8
#: Observed points per batch of products when covariance guidance builds :math:`B N B^\top`.
GRAM_CHUNK = 64


def guidance_weight(weight: float | None, noise: WhiteNoise | GRFNoise | None = None) -> float:
    """``weight``, or :data:`DEFAULT_WEIGHT` of the kind of ``noise`` (white when ``None``) if it is ``None``."""
    if weight is not None:
        return float(weight)
    return DEFAULT_WEIGHT[noise.to_dict()["kind"] if noise is not None else "white"]


class DecoupledFields(torch.nn.Module):
    r"""DDIS fields: a prior on the coefficient alone, the solution from a forward operator.

    :math:`\Phi(x) = [a, \mathcal G(a)]`, :math:`a = \text{decode}(x)`, with :math:`\mathcal G` a trained
    neural operator (e.g. from :func:`oplearn.training.run.load_run`). Gradients flow through
    both, so observations of the solution guide the coefficient.

    Shapes: ``(batch, C_a, *spatial) -> (batch, C_a + C_u, *spatial)``.
    """

    def __init__(self, operator: torch.nn.Module, decode: Fields | None = None) -> None:
        super().__init__()
        self.operator = operator
        self.decode = decode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x if self.decode is None else self.decode(x)
        return torch.cat([a, self.operator(a).to(a.dtype)], dim=1)


def two_valued(pde: PDE | None) -> dict[str, tuple[float, float]]:
    """``{input channel: (low, high)}`` for PDEs whose coefficient takes two values (Darcy), else ``{}``."""
    if pde is not None and hasattr(pde, "low") and hasattr(pde, "high"):
        return {pde.input_names[0]: (float(pde.low), float(pde.high))}
    return {}


def _difference_step(x_norm: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    r"""The step :math:`\epsilon` of a forward difference along ``direction (batch, ...)``:
    :math:`\epsilon \lVert d \rVert = \delta \lVert x \rVert` (:data:`DIFFERENCE_STEP`), and 1 where
    :math:`d = 0` (a zero direction, e.g. a gradient cut off by a clamp, differences to 0 at any step).
    Shapes: ``x_norm (batch,) -> (batch,)``."""
    norm = direction.flatten(1).norm(dim=1)
    return torch.where(norm > 0, DIFFERENCE_STEP * x_norm / norm.clamp_min(torch.finfo(norm.dtype).tiny), 1.0)


def _vjp(out: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """:math:`J^\\top v` of ``out`` with respect to ``x`` (keeps the graph)."""
    return torch.autograd.grad(out, x, grad_outputs=v, retain_graph=True)[0]


class GuidedDenoiser:
    r"""The guided denoiser :math:`D_g(x, \sigma)` of the module docstring; call it like ``denoise``.

    Parameters
    ----------
    denoise : callable
        The prior's denoiser ``(x (batch, C, *spatial), sigma (batch,)) -> x0_hat``.
    observation : Observation
        What is observed of the physical fields, with its noise level ``s``.
    y : tensor ``(m,)`` or ``(batch, m)``
        The observed values.
    weight : float, optional
        The guidance weight ``w`` (1 is the Bayesian value for ``likelihood`` and for
        ``normalized`` with white noise; ``covariance`` ignores it); default :data:`DEFAULT_WEIGHT`
        of the noise kind.
    scale : {"covariance", "normalized", "likelihood"}
        The step (module docstring); default :data:`DEFAULT_SCALE`.
    fields : callable, optional
        Prior space -> observed physical fields; the identity by default.
    pde, grid, pde_weight :
        The optional PDE-residual term (``pde_weight = 0`` turns it off).
    damping : float
        :math:`\delta` of covariance guidance (module docstring).
    noise : WhiteNoise or GRFNoise, optional
        The prior's forward noise, whose covariance :math:`N` carries the likelihood score
        (module docstring); white by default.
    schedule : tensor ``(steps + 1,)``, optional
        The sampler's noise levels: match the guidance to its steps (step-matched guidance in
        the module docstring; ``normalized`` and ``likelihood`` scales). ``None`` applies the
        full correction at every call.
    krylov : int, optional
        The most Krylov directions per call: GMRES iterations of covariance guidance, Lanczos
        directions of Krylov guidance (needs ``schedule``; 1 is the one-direction step);
        default :data:`DEFAULT_KRYLOV` of the scale.

    Attributes
    ----------
    forward_passes, backward_passes : int
        Network passes so far (a vector-Jacobian product through the denoiser is a backward pass).
    """

    def __init__(
        self,
        denoise: Denoiser,
        observation: Observation,
        y: torch.Tensor,
        weight: float | None = None,
        scale: str = DEFAULT_SCALE,
        fields: Fields | None = None,
        pde: PDE | None = None,
        grid: Grid | None = None,
        pde_weight: float = 0.0,
        damping: float = DEFAULT_DAMPING,
        noise: WhiteNoise | GRFNoise | None = None,
        schedule: torch.Tensor | None = None,
        krylov: int | None = None,
    ) -> None:
        if scale not in SCALES:
            raise ConfigError(f"guidance scale must be one of {SCALES}, got {scale!r}")
        if scale == "likelihood" and observation.noise == 0:
            raise ConfigError("likelihood guidance needs a noise level > 0 (or use scale='normalized')")
        if scale == "covariance" and pde_weight:
            raise ConfigError("covariance guidance takes no PDE-residual term (use scale 'normalized' with it)")
        if pde_weight and (pde is None or grid is None):
            raise ConfigError("the PDE-residual term needs the PDE and its grid")
        krylov = DEFAULT_KRYLOV[scale] if krylov is None else int(krylov)
        if krylov < 1:
            raise ConfigError(f"krylov must be >= 1 (the number of guidance directions per step), got {krylov}")
        if krylov > 1 and schedule is None and scale != "covariance":
            raise ConfigError(
                "krylov > 1 with the normalized or likelihood scale applies to step-matched guidance: "
                "pass the sampler's schedule"
            )
        if not damping >= 0:
            raise ConfigError(f"damping must be >= 0, got {damping}")
        self.denoise, self.observation, self.fields = denoise, observation, fields
        self.y = y if y.ndim == 2 else y.unsqueeze(0)
        self.weight = guidance_weight(weight, noise)
        self.scale, self.damping = scale, float(damping)
        self.pde, self.grid, self.pde_weight = pde, grid, float(pde_weight)
        self.covariance = noise.covariance if noise is not None else (lambda v: v)
        self.levels = None if schedule is None else [float(v) for v in torch.as_tensor(schedule).reshape(-1)]
        self.krylov = krylov
        self.forward_passes = self.backward_passes = 0
        self._gram = None  # covariance guidance: eigenpairs of B N B^T
        self._warm = None  # covariance guidance: the previous call's z

    def start(self, x: torch.Tensor, sigma_max: float) -> torch.Tensor:
        r"""The sampler's starting state at :math:`\sigma_{max}`: ``x (batch, C, *spatial)``, a draw of
        :math:`\mathcal N(0, \sigma_{max}^2 N)`, centred on the posterior mean for covariance guidance,
        :math:`x + D_g(x, \sigma_{max})` (unchanged for the other scales).

        The posterior's marginal at :math:`\sigma_{max}` is :math:`\mathcal N(\mu, \Sigma + \sigma_{max}^2 N)`, not
        centred at 0: the ODE carries a start offset :math:`-\mu` to the end with the same factor as
        the start's noise, so relative to the Monte Carlo error of a mean of :math:`M` draws the
        offset is :math:`\sqrt M\, \mu_k / (\sigma_{max} \sqrt{n_k})` in a mode of noise variance
        :math:`n_k`: small for the prior (:math:`\mu = 0`), not for a well-determined posterior
        mean with content where the noise is weak. At :math:`\sigma_{max}` the covariance-guided
        denoiser is the posterior mean up to :math:`O(K / \sigma_{max})` (on the 32x32 linear-Gaussian
        problem observing f at 31 points it cut the gap of 64 draws from 3.0 to 0.8 Monte Carlo
        errors, as centring on the exact mean did); one call, warm-starting the first step's solve."""
        if self.scale != "covariance":
            return x
        return x + self(x, torch.full((len(x),), float(sigma_max), dtype=x.dtype, device=x.device))

    def _physical(self, x0: torch.Tensor) -> torch.Tensor:
        return x0 if self.fields is None else self.fields(x0)

    def pde_residual(self, fields: torch.Tensor) -> torch.Tensor:
        """The PDE residual of physical fields, ``(batch, C, *spatial) -> (batch, ...)``; a two-valued
        coefficient is first clamped to its range (denoised estimates may leave it)."""
        k = len(self.pde.input_names)
        inputs = fields[:, :k]
        for name, (low, high) in two_valued(self.pde).items():
            c = self.pde.input_names.index(name)
            inputs = torch.cat([inputs[:, :c], inputs[:, c : c + 1].clamp(low, high), inputs[:, c + 1 :]], dim=1)
        return self.pde.residual(fields[:, k:], inputs, self.grid)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        denoised, correction = self.split(x, sigma)
        return denoised + correction

    def split(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        r""":math:`D_g` in two parts, ``(x0_hat, correction)``: the prior's denoised estimate and the
        guidance correction, which multistep samplers take at first order (it is stiff; see
        :mod:`oplearn.diffusion.samplers`). Covariance guidance returns ``(D_g, 0)``: the exact
        posterior denoiser is as smooth as the prior's."""
        if self.scale == "covariance":
            return self._covariance_denoiser(x.detach(), sigma), 0.0
        s2 = self.observation.noise**2
        sig2 = sigma.to(x.dtype).reshape(-1, *[1] * (x.ndim - 1)) ** 2
        self.forward_passes += 1
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            x0 = self.denoise(x, sigma)
            phys = self._physical(x0)
            predicted = self.observation.apply(phys)
            r = self.y.to(phys) - predicted
            if self.scale == "likelihood":
                lam = self.weight * sig2 / s2
            else:
                lam = self.weight * sig2 / (s2 + r.detach().square().mean(dim=1)).reshape(sig2.shape)
            factor = 1.0  # the step factor of the one-direction rate (step-matched guidance)
            if self.krylov > 1:
                correction, rate = self._krylov_correction(x, sigma, r, lam, predicted.detach())
                factor = self._step_factor(rate, float(sigma.max())).reshape(sig2.shape).to(x0)
            else:
                step = lam * torch.autograd.grad(0.5 * r.square().sum(), x, retain_graph=bool(self.pde_weight))[0]
                self.backward_passes += 1
                correction = -self.covariance(step)
                if self.levels is not None:
                    rate = -(step * correction).flatten(1).sum(dim=1) / (
                        lam.flatten() * r.detach().square().sum(dim=1)
                    ).clamp_min(1e-30)
                    factor = self._step_factor(rate, float(sigma.max())).reshape(sig2.shape).to(x0)
                    correction = factor * correction
            if self.pde_weight:
                res = self.pde_residual(phys).flatten(1)
                log_norm = 0.5 * torch.log(res.square().sum(dim=1)).sum()
                correction = correction - factor * self.covariance(
                    self.pde_weight * sig2 * torch.autograd.grad(log_norm, x)[0]
                )
                self.backward_passes += 1
        return x0.detach(), correction.detach()

    def _krylov_correction(
        self, x: torch.Tensor, sigma: torch.Tensor, r: torch.Tensor, lam: torch.Tensor, observed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The step-matched correction :math:`\lambda N G^\top z`, :math:`z = \lVert r \rVert V f(T) e_1`,
        from at most ``krylov`` Lanczos steps on :math:`K = \lambda G N G^\top` (module docstring),
        and the Rayleigh quotient :math:`r^\top K r / \lVert r \rVert^2` (the one-direction rate).

        :math:`G^\top v` is a vector-Jacobian product through the graph of ``r``; :math:`G u` is the
        forward difference :math:`(A\Phi(D(x + \epsilon u)) - A\Phi(D(x))) / \epsilon` from
        ``observed`` :math:`= A\Phi(D(x))`, with :math:`\epsilon \lVert u \rVert = \delta \lVert x \rVert`
        (:data:`DIFFERENCE_STEP`): one forward pass without a graph, a third of the cost of a
        forward-mode product, and within 0.05-0.6% of it on the trained Darcy prior. The
        diagonal of :math:`T` needs only the former, :math:`v^\top K v = \lambda (G^\top v)^\top N G^\top v`,
        so ``n`` directions cost ``n`` vector-Jacobian products and ``n - 1`` forward passes. The
        iteration stops once adding a direction changes :math:`z` by less than
        :data:`KRYLOV_TOLERANCE` of its norm for every sample. The basis is re-orthogonalised in
        full (``n`` vectors of length ``m``); a sample whose Krylov space closes (next vector ~0)
        gets zero vectors from there on, which decouple in :math:`T`."""
        lam = lam.reshape(-1, 1)
        tiny = torch.finfo(r.dtype).tiny
        norm = r.detach().norm(dim=1, keepdim=True).clamp_min(tiny)
        basis, pushed, alphas, betas, coeff = [r.detach() / norm], [], [], [], None
        x_norm = x.detach().flatten(1).norm(dim=1).clamp_min(1.0)
        directions = min(self.krylov, r.shape[1])
        for j in range(directions):
            adjoint = -_vjp(r, x, basis[-1])  # G^T v
            self.backward_passes += 1
            pushed.append(self.covariance(adjoint))  # N G^T v
            alphas.append(lam * (adjoint * pushed[-1]).flatten(1).sum(dim=1, keepdim=True))
            previous, coeff = coeff, self._lanczos_coefficients(alphas, betas, float(sigma.max()))
            if (
                previous is not None
                and (
                    (coeff[:, :-1] - previous).square().sum(1) + coeff[:, -1].square()
                    <= KRYLOV_TOLERANCE**2 * coeff.square().sum(1)
                ).all()
            ):
                break
            if j + 1 == directions:
                break
            eps = _difference_step(x_norm, pushed[-1]).reshape(-1, 1)
            with torch.no_grad():
                moved = x.detach() + eps.reshape(-1, *[1] * (x.ndim - 1)) * pushed[-1]
                w = lam * (self.observation.apply(self._physical(self.denoise(moved, sigma))) - observed) / eps  # K v
            self.forward_passes += 1
            for _ in range(2):  # full re-orthogonalisation; twice is enough
                w = w - sum((b * w).sum(dim=1, keepdim=True) * b for b in basis)
            beta = w.norm(dim=1, keepdim=True)
            beta = torch.where(beta > 1e-6 * alphas[0].abs(), beta, torch.zeros_like(beta))
            betas.append(beta)
            basis.append(w / beta.clamp_min(tiny) * (beta > 0))
        coeff = (coeff.to(norm) * norm * lam).reshape(len(r), -1, *[1] * (x.ndim - 1))
        return sum(coeff[:, j] * pushed[j] for j in range(len(pushed))), alphas[0].reshape(-1)

    def _lanczos_coefficients(
        self, alphas: list[torch.Tensor], betas: list[torch.Tensor], sigma: float
    ) -> torch.Tensor:
        """:math:`f(T) e_1` for the tridiagonal :math:`T` of ``alphas`` (diagonal, ``n`` of ``(batch, 1)``)
        and ``betas`` (the first ``n - 1`` off-diagonals): ``(batch, n)``, float64."""
        n = len(alphas)
        tri = torch.diag_embed(torch.cat(alphas, dim=1).double())
        if n > 1:
            off = torch.diag_embed(torch.cat(betas[: n - 1], dim=1).double(), offset=1)
            tri = tri + off + off.transpose(1, 2)
        theta, q = torch.linalg.eigh(tri)
        return ((q * self._step_factor(theta, sigma).unsqueeze(1)) @ q[:, 0, :].unsqueeze(2)).squeeze(2)

    def _step_factor(self, rate: torch.Tensor, sigma: float) -> torch.Tensor:
        r"""The factor :math:`f = \min(1, (1 - e^{-k h}) / (k \varphi))` of step-matched guidance
        (module docstring) for relaxation rates ``rate`` of any shape (per sample, or the Ritz
        values of Krylov guidance) at level ``sigma``."""
        start = next((i for i, v in enumerate(self.levels) if v <= sigma * (1 + 1e-5)), len(self.levels))
        t = self.levels[start + 1] if start + 1 < len(self.levels) else 0.0
        k = rate.double().clamp_min(1e-12)
        if t <= 0:
            return (1 / k).clamp(max=1)
        h = torch.tensor(sigma / t, dtype=torch.float64).log()
        return (-torch.expm1(-k * h) / (k * -torch.expm1(-h))).clamp(max=1)

    def _covariance_denoiser(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        r""":math:`D_g = \hat x_0 + \sigma^2 J N B^\top z` of covariance guidance (module docstring): ``z`` by
        right-preconditioned GMRES, per sample, warm-started from the previous call; the field
        :math:`J N B^\top v` of each Krylov vector comes from the same forward difference as its
        product, so ``k`` iterations cost ``k`` network passes (one more for the warm start)."""
        obs = self.observation
        tiny = torch.finfo(x.dtype).tiny
        sig2 = sigma.to(x.dtype).reshape(-1, 1) ** 2
        with torch.no_grad():
            x0 = self.denoise(x, sigma)
        self.forward_passes += 1
        x0_leaf = x0.detach().requires_grad_(True)
        with torch.enable_grad():
            predicted = obs.apply(self._physical(x0_leaf))
        r = self.y.to(predicted) - predicted.detach()
        if self._gram is None:
            self._gram = observed_noise_gram(self.observation, self._physical, self.covariance, x0[:1])
        eigenvalues, vectors = (t.to(r) for t in self._gram)
        damp = obs.noise**2 + self.damping * sig2 * eigenvalues.mean()  # (batch, 1)
        x_norm = x.flatten(1).norm(dim=1).clamp_min(1.0)

        def push(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """``(J N B^T v, B J N B^T v)`` by one forward difference."""
            u = self.covariance(torch.autograd.grad(predicted, x0_leaf, grad_outputs=v, retain_graph=True)[0])
            eps = _difference_step(x_norm, u).reshape(-1, *[1] * (x.ndim - 1))
            with torch.no_grad():
                moved = self.denoise(x + eps * u, sigma)
                observed = obs.apply(self._physical(moved))
            self.forward_passes += 1
            return (moved - x0) / eps, (observed - predicted.detach()) / eps.reshape(-1, 1)

        def precondition(v: torch.Tensor) -> torch.Tensor:
            return ((v @ vectors) / (sig2 * eigenvalues + damp).clamp_min(tiny)) @ vectors.T

        field = torch.zeros_like(x0)
        z = torch.zeros_like(r)
        residual = r
        if self._warm is not None and self._warm.shape == r.shape:
            field, product = push(self._warm)
            image = sig2 * product + damp * self._warm
            best = (r * image).sum(dim=1, keepdim=True) / image.square().sum(dim=1, keepdim=True).clamp_min(tiny)
            z, field = best * self._warm, best.reshape(-1, *[1] * (x.ndim - 1)) * field
            residual = r - best * image
        beta = residual.norm(dim=1, keepdim=True)
        iterations = min(self.krylov, r.shape[1])
        basis = torch.zeros(len(r), iterations + 1, r.shape[1], dtype=r.dtype, device=r.device)
        basis[:, 0] = residual / beta.clamp_min(tiny)
        pushed = []
        hessenberg = torch.zeros(len(r), iterations + 1, iterations, dtype=torch.float64, device=r.device)
        target = torch.zeros(len(r), iterations + 1, 1, dtype=torch.float64, device=r.device)
        target[:, 0, 0] = beta[:, 0].double()
        r_norm = r.norm(dim=1).double().clamp_min(tiny)
        coefficients = None
        for j in range(iterations):
            preconditioned = precondition(basis[:, j])
            f, product = push(preconditioned)
            pushed.append((preconditioned, f))
            w = (sig2 * product + damp * preconditioned).unsqueeze(2)
            done = basis[:, : j + 1]
            for _ in range(2):  # classical Gram-Schmidt, twice: as orthogonal as modified, in 4 products
                h = done @ w
                hessenberg[:, : j + 1, j] += h[..., 0].double()
                w = w - done.transpose(1, 2) @ h
            h_next = w[..., 0].norm(dim=1)
            hessenberg[:, j + 1, j] = h_next.double()
            basis[:, j + 1] = w[..., 0] / h_next[:, None].clamp_min(tiny)
            coefficients = torch.linalg.lstsq(hessenberg[:, : j + 2, : j + 1], target[:, : j + 2]).solution
            left = (target[:, : j + 2] - hessenberg[:, : j + 2, : j + 1] @ coefficients).flatten(1).norm(dim=1)
            if (left <= GMRES_TOLERANCE * r_norm).all():
                break
        if coefficients is not None:
            c = coefficients[..., 0].to(r)
            for i, (v, f) in enumerate(pushed):
                z = z + c[:, i : i + 1] * v
                field = field + c[:, i].reshape(-1, *[1] * (x.ndim - 1)) * f
        self._warm = z.detach()
        return (x0 + sig2.reshape(-1, *[1] * (x.ndim - 1)) * field).detach()


def observed_noise_gram(
    observation: Observation, fields: Fields, covariance: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Eigenvalues (at least :data:`PRECONDITIONER_FLOOR` of the largest) and eigenvectors of the symmetric
    part of :math:`B N B^\top` (:math:`m \times m`, float64), :math:`B` the Jacobian of
    :math:`x \mapsto A\,\text{fields}(x)` at ``x0 (1, C, *spatial)`` and :math:`N` = ``covariance``:
    :math:`B^\top e_i` by vector-Jacobian products, :math:`B u` by forward differences, in chunks of
    :data:`GRAM_CHUNK` observed points. Shapes: ``-> (m,), (m, m)``."""
    m = len(observation)
    rows = []
    for start in range(0, m, GRAM_CHUNK):
        count = min(GRAM_CHUNK, m - start)
        probe = x0.detach().expand(count, *x0.shape[1:]).clone().requires_grad_(True)
        with torch.enable_grad():
            predicted = observation.apply(fields(probe))
        unit = torch.zeros_like(predicted)
        unit[torch.arange(count), torch.arange(start, start + count)] = 1
        u = covariance(torch.autograd.grad(predicted, probe, grad_outputs=unit)[0])
        eps = _difference_step(x0.flatten(1).norm().clamp_min(1.0).expand(count), u)
        with torch.no_grad():
            moved = observation.apply(fields(probe.detach() + eps.reshape(-1, *[1] * (x0.ndim - 1)) * u))
        rows.append(((moved - predicted.detach()) / eps[:, None]).double())
    gram = torch.cat(rows)
    eigenvalues, vectors = torch.linalg.eigh(0.5 * (gram + gram.T))
    return eigenvalues.clamp_min(PRECONDITIONER_FLOOR * eigenvalues.max()), vectors
