"""r1dsl: a declarative recipe compiler for DeepSeek-R1-style reasoning-model training.

The front end is torch-free: `load_recipe(path)` gives the checked IR (r1dsl.ir.Recipe).
"""

__version__ = "0.1.0"


def load_recipe(path, overrides=()):
    """The checked IR of a recipe file; raises r1dsl.frontend.RecipeError with the rendered diagnostics.

    Reward rules and generators come from the installed catalogue: outside the CLI, first
    `r1dsl.catalogue.install(backends.catalogue.build())`.
    """
    from r1dsl.frontend import load_recipe as _load

    return _load(path, overrides)
