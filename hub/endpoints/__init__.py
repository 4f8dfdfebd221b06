"""Inference endpoints: a model repo's alias served live, batched, hot-swapped when the alias moves.

- `batching.py`: the queue and inference thread of one loaded version (continuous dynamic batching);
- `serving.py`: `Endpoint` (follows its alias, loads, warms up, swaps, frees) and `EndpointHost`;
- `convention.py`: the Hub inference body and answer shapes, per task;
- `app.py`: the routes under an endpoint's URL and the hub middleware that dispatches to them.
"""
