"""Names vulture takes for unused that something it cannot see uses ([tool.vulture] in pyproject.toml).

Never imported or run: an attribute of `_` marks the name as used. Each group says who uses it.
Framework hooks named by a decorator (click commands, pydantic validators, pytest fixtures) are in
[tool.vulture] ignore_decorators instead. Before adding a name here, make sure it is not dead.
"""

_: object

# Python calls a module's __getattr__ and __dir__ (PEP 562): cgpreset's lazy public API.
_.__getattr__
_.__dir__

# PyYAML's Loader calls these (cgpreset/_yaml.py overrides them to skip path resolvers).
_.descend_resolver
_.ascend_resolver
_.current_node
_.current_index

# http.server and socketserver read these class attributes and call these methods
# (cgpreset/emulator/rest.py: the emulator's REST handler and server).
_.protocol_version
_.server_version
_.sys_version
_.log_message
_.do_GET
_.do_POST
_.do_PUT
_.do_DELETE
_.do_PATCH
_.close_connection
_.daemon_threads
_.block_on_close
_.request_queue_size
_.allow_reuse_address
_.handle_error
_.client_address

# click.Group reads group_class (cgpreset/cli/__init__.py: subgroups get the same class).
_.group_class

# psycopg's Connection.read_only is a property setter (cgpreset/store/postgres.py, reader()).
_.read_only

# The emulator calls an endpoint's handler by name: getattr(self, "_" + endpoint id) (emulator/api.py).
_._supported_coins
_._supported_exchanges
_._supported_exchange_pairs
_._account_subscription
_._open_interest_exchange_list
_._funding_rate_history
_._liquidation_aggregated_history
_._aggregated_taker_buy_sell_volume_history
_._liquidation_exchange_list
_._etf_bitcoin_flow_history

# mypy checks this function: the real client satisfies the Client protocol (api/protocol.py).
_._satisfies

# Pydantic fields of a config's provenance: written into every generated config (models/config.py).
_.template_sha256
_.discovery_sha256

# Public API the README documents (analyst read: `.to_polars()`); nothing inside cgpreset calls it.
_.to_polars

# pytest reads a test module's pytestmark.
_.pytestmark
