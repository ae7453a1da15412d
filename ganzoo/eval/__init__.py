"""Evaluator plugins: the figures of merit of a generator, injected into ``GAN``.

The contract (``conf/eval/<name>.yaml`` builds one; ``eval=none`` turns evaluation off):

    __call__(module) -> dict[str, float]   figures, named "eval/...", logged against the
                                           generator step (module.generate draws samples)
    setup(datamodule)                      optional: called once the data is set up
    plot(path, module, title)              optional: the picture of each evaluation
    n_modes: int                           optional: modes of the data, for the report

    eval=modes    ganzoo.eval.toy.ToyEvaluator: PacGAN mode coverage, the true divergence,
                  and samples over the data with the critic behind them (1-D: the density,
                  a histogram of samples and the critic's curve)
    eval=images   ganzoo.eval.images.ImageEvaluator: FID, KID, IS (metrics.*) and a grid
    eval=stacked  ganzoo.eval.stacked.StackedEvaluator: the Stacked-MNIST mode count on
                  stacked digits (a digits classifier per channel) and a labelled grid
"""
