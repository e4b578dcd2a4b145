"""The service layer: what the routes, the CLI and the workers do to the database."""
