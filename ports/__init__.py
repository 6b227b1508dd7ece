"""The small interfaces the core needs from the world, and the adapters that sit behind them:
the supplier (and the factory that picks its adapter by configuration), the store as the activities
see it, and the webhook guard. ``store``, ``sandbox``, ``api``, ``activities`` and ``worker`` import them from here."""
