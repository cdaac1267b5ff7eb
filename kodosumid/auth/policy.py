"""Who may call which RPC of a node (fail closed: methods not listed are refused).

Per-execution rules (users act only on their own executions; operators and admins on all)
are enforced by the domain, which sees the caller as a Principal.
"""

from __future__ import annotations

from kodosumi.authz import (
    ADMIN,
    FLOW,
    GATEWAY,
    HUMAN_ROLES,
    NODE,
    OPERATOR,
    Rule,
    standard_rules,
)

_FLOW = "/kodosumi.v1.FlowService/"
_A2A = "/lf.a2a.v1.A2AService/"
_FILES = "/kodosumi.v1.FileService/"
_USERS = Rule(HUMAN_ROLES)
# Peers call flows on behalf of their users (peer forwarding), and flows call flows with
# their own identity (`flow/<node>/<flow>`): both may use the flow API, for their own
# executions only (the domain holds everyone to the executions they launched).
_USERS_AND_NODES = Rule(HUMAN_ROLES | {NODE, FLOW})
# A marketplace gateway (kodogate) runs the executions it sells under its own identity: it
# reads flows, launches, watches, answers input requests and cancels, its own executions only
# (the same domain rule), and reads the files they produced to serve them as links.
_SELLERS = Rule(HUMAN_ROLES | {NODE, FLOW, GATEWAY})

NODE_POLICY: dict[str, Rule] = {
    **standard_rules(),
    _FLOW + "ListFlows": _SELLERS,
    _FLOW + "GetFlow": _SELLERS,
    _FLOW + "LaunchExecution": _SELLERS,
    _FLOW + "GetExecution": _SELLERS,
    _FLOW + "ListExecutions": _SELLERS,
    _FLOW + "WatchExecution": _SELLERS,
    _FLOW + "CancelExecution": _SELLERS,
    _FLOW + "ProvideInput": _SELLERS,
    _FLOW + "DeleteExecution": _USERS,
    # Files (kodosumid/files/): owners read theirs; executors (the node's or the flow's
    # identity) read their execution's inputs and add its outputs; peers read what a
    # forwarded launch brought (kodosumid/files/access.py).
    _FILES + "UploadFile": _USERS_AND_NODES,
    _FILES + "DownloadFile": _SELLERS,
    _FILES + "StatFile": _SELLERS,
    _FILES + "ListFiles": _USERS_AND_NODES,
    _FILES + "DeleteFile": _USERS,
    # Metered usage: a user sees their own, operators and admins everybody's (the domain's
    # rule, kodosumid/executions/metering.py).
    "/kodosumi.v1.UsageService/ListUsage": _USERS,
    "/kodosumi.v1.UsageService/GetExecutionUsage": _USERS,
    # Contracts (kodosumid/market/): a quote is for its requester only, a receipt for its
    # owner or an admin (the domain holds them to it); a gateway quotes what it sells.
    "/kodosumi.v1.QuoteService/RequestQuote": _SELLERS,
    "/kodosumi.v1.QuoteService/GetReceipt": _SELLERS,
    "/kodosumi.v1.NodeService/GetNodeInfo": Rule.of(ADMIN, OPERATOR, "user", NODE, GATEWAY),
    "/kodosumi.v1.NodeService/ListPeers": Rule.of(ADMIN, OPERATOR, "user", NODE),
    # The operator stream (alerts about everybody's executions and the network).
    "/kodosumi.v1.NodeService/WatchAlerts": Rule.of(ADMIN, OPERATOR),
    # A2A (kodosumid/a2a/): tasks are executions, held to the same owners as the flow API.
    **{
        _A2A + method: _USERS_AND_NODES
        for method in (
            "SendMessage",
            "SendStreamingMessage",
            "GetTask",
            "ListTasks",
            "CancelTask",
            "SubscribeToTask",
            "CreateTaskPushNotificationConfig",
            "GetTaskPushNotificationConfig",
            "ListTaskPushNotificationConfigs",
            "DeleteTaskPushNotificationConfig",
            "GetExtendedAgentCard",
        )
    },
}
