"""gRPC plumbing shared by the daemons and the SDK: status translation, identity, authorization
interceptor, server and channel construction. Domain code never imports this package."""
