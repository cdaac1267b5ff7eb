"""Example flows shipped with kodosumi: the default catalog of a fresh node.

`flows.catalog.EXAMPLES` describes them (importing it imports neither crewai nor the flows).
Plain Python flows are in `flows.basic`; CrewAI crews in `flows.serviceplan` (plus the YAML
spec `assets/search.yaml`); a CrewAI Flow in `flows.research`; human-in-the-loop examples
in `flows.review` and `flows.basic.approval`. Every CrewAI example runs offline on the
scripted model unless `KODOSUMI_EXAMPLE_LLM` names a real one (see docs/flows.md).
"""
