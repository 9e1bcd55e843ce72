"""Capacity and cost model: what N concurrent riders and their viewers need from each service
(the viewers through CloudFront), and what it costs.

``breakaway capacity --riders N [--json]`` prints it (:mod:`infra.capacity.command`);
docs/capacity.md explains the model and tabulates 1,000, 10,000 and 100,000 riders.

- :mod:`~infra.capacity.model`: the arithmetic, service by service, and the limits (no I/O);
- :mod:`~infra.capacity.facts`: AWS limits and quotas, and the stated assumptions;
- :mod:`~infra.capacity.prices`: every price, its page, and whether it was seen or assumed;
- :mod:`~infra.capacity.sizes`: item, message and answer sizes from the project's own code;
- :mod:`~infra.capacity.measured`: figures from ``benchmarks/results.json``, when present;
- :mod:`~infra.capacity.render`: the text summary and the JSON.

The package imports nothing from ``aws_cdk`` (so the CLI starts fast) and takes every fact about
the project from where it is defined: :mod:`shared.contract`, :mod:`shared.items`,
:mod:`shared.keys`, :mod:`shared.ranking`, the API's response models, and the event source
mapping, function, archive and CDN settings of :mod:`infra.config`.
"""
