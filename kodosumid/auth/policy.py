"""Who may call which RPC of a node (fail closed: methods not listed are refused).

Per-execution rules (users act only on their own executions; operators and admins on all)
are enforced by the domain, which sees the caller as a Principal.
"""

from __future__ import annotations

from kodosumi.authz import ADMIN, FLOW, HUMAN_ROLES, NODE, OPERATOR, Rule, standard_rules

_FLOW = "/kodosumi.v1.FlowService/"
_A2A = "/lf.a2a.v1.A2AService/"
_FILES = "/kodosumi.v1.FileService/"
_USERS = Rule(HUMAN_ROLES)
# Peers call flows on behalf of their users (peer forwarding), and flows call flows with
# their own identity (`flow/<node>/<flow>`): both may use the flow API, for their own
# executions only (the domain holds everyone to the executions they launched).
_USERS_AND_NODES = Rule(HUMAN_ROLES | {NODE, FLOW})

NODE_POLICY: dict[str, Rule] = {
    **standard_rules(),
    _FLOW + "ListFlows": _USERS_AND_NODES,
    _FLOW + "GetFlow": _USERS_AND_NODES,
    _FLOW + "LaunchExecution": _USERS_AND_NODES,
    _FLOW + "GetExecution": _USERS_AND_NODES,
    _FLOW + "ListExecutions": _USERS_AND_NODES,
    _FLOW + "WatchExecution": _USERS_AND_NODES,
    _FLOW + "CancelExecution": _USERS_AND_NODES,
    _FLOW + "ProvideInput": _USERS_AND_NODES,
    _FLOW + "DeleteExecution": _USERS,
    # Files (kodosumid/files/): owners read theirs; executors (the node's or the flow's
    # identity) read their execution's inputs and add its outputs; peers read what a
    # forwarded launch brought (kodosumid/files/access.py).
    _FILES + "UploadFile": _USERS_AND_NODES,
    _FILES + "DownloadFile": _USERS_AND_NODES,
    _FILES + "StatFile": _USERS_AND_NODES,
    _FILES + "ListFiles": _USERS_AND_NODES,
    _FILES + "DeleteFile": _USERS,
    # Metered usage: a user sees their own, operators and admins everybody's (the domain's
    # rule, kodosumid/executions/metering.py).
    "/kodosumi.v1.UsageService/ListUsage": _USERS,
    "/kodosumi.v1.UsageService/GetExecutionUsage": _USERS,
    "/kodosumi.v1.NodeService/GetNodeInfo": Rule.of(ADMIN, OPERATOR, "user", NODE),
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
