"""The provider API client (`integration_client(integration)`); `hooks.py` is where rate
limiting and the call log plug into every call."""
