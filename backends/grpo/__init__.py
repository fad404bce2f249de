"""GRPO (DeepSeekMath eq. 3): the pure loss functions, separate from the stage that runs them."""

from backends.grpo.loss import group_advantages, grpo_loss, kl_estimate  # noqa: F401
