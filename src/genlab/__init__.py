"""genlab: a generative-AI workbench. Train, sample, evaluate and serve generative models on a laptop CPU.

    import genlab
    run = genlab.train("text:pydocs", family="gpt", max_steps=500)
    print(genlab.load(run).generate(prompt="The ", seed=1))
"""

__version__ = "0.1.0"

_API = ("align", "card", "describe", "detect", "evaluate", "export", "feedback_export", "feedback_import", "finetune",
        "import_run", "info", "inspect", "leaderboard", "list_runs", "load", "merge", "presets", "rate", "report",
        "prompt_from", "reward", "reward_accuracy", "sample", "serve", "train")


def __getattr__(name: str):
    # imported lazily so that `genlab --help` and the CLI's thread settings come before torch loads
    if name == "serve":  # the package, callable: genlab.serve(runs, ...) runs the server
        import genlab.serve

        return genlab.serve
    if name in _API:
        from genlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})  # the verbs load lazily, but dir(genlab) and tab completion list them


__all__ = ["__version__", *_API]
