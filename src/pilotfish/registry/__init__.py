"""The service registry: services and their endpoints, merged from every source into one snapshot."""
