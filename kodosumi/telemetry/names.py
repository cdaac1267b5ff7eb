"""Attribute names kodosumi puts on spans, one home for each so that every process (SDK,
node, executor) names the same thing the same way.
"""

from __future__ import annotations

# The execution a span concerns: client calls, the node's server spans, the executor's
# execution and step spans.
EXECUTION_ID = "kodosumi.execution_id"
FLOW = "kodosumi.flow"
NODE_ID = "kodosumi.node_id"
