"""Reports on run folders: the run report, comparisons, and nightly history.

Modules: ``runs`` reads run folders without trusting them; ``stats`` and ``fairness``
compute the figures with their intervals; ``plots`` draws them as inline SVG;
``html`` builds escaped, self-contained pages; ``gallery`` makes the thumbnails;
``run_report`` and ``compare`` are the two kinds of page; ``matrix``, ``history``,
``regress``, ``trends``, ``ci_outputs`` and ``nightly`` make up ``hil nightly``;
``synth`` writes synthetic run folders for tests and benchmarks; ``cli`` wires the
commands.
"""
