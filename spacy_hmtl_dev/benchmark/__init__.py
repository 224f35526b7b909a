"""The benchmark (``scripts/benchmark.py``): test-set scores of every trained pipeline next to
published results, and speed next to spaCy's stock ``en_core_web_md`` measured in the same run.

``run.run_benchmark`` writes ``OUTPUT.md`` and ``OUTPUT.json`` from its parts:

* ``scores``: every pipeline found under the models directory, evaluated here on its test
  corpus (the columns: the F1 of every score row of every registered task);
* ``published``: the figures of DESIGN.md section 5, labelled "quoted";
* ``speed``: words/s through ``nlp.pipe`` of each HMTL pipeline and of the stock pipeline,
  interleaved in the same run, the time of each pipe, and each pipeline's peak memory in a
  fresh process (``rss_probe``);
* ``records``: what other commands measured and the benchmark reports (training wall time
  and memory, each head's share of the encoder's gradient, training throughput, dev curves);
* ``report``: the tables and the markdown.
"""
