"""Measuring sensitivity maps: the metrics, and the `minisg evaluate` report built on them.

  metrics.py         every metric under one name (``from minisg.evaluation import metrics``)
    inputs.py          what all metrics share: checked maps, masks, targets; pool_channels
    localisation.py    pointing game, relevance mass and rank, target share, discriminativity
    faithfulness.py    deletion and insertion curves (RISE), their area, model_scores
    sanity.py          cascading randomisation (Adebayo et al.), Spearman correlation
    visual_noise.py    the displayed map's total variation and high-frequency energy
    aggregation.py     mean ± standard error, Markdown and CSV tables
  report.py          `minisg evaluate`: run() and the atomic writing of its files
    report_setup.py    settings, test digits and scenes, computing the maps
    report_tables.py   the three tables: digits, scenes, training noise x inference noise
    report_text.py     results.md and results.csv
    report_figures.py  the PNGs
"""
