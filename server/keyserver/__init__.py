"""keyservice: the gRPC KeyService server."""
