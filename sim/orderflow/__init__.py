"""One module per privacy mode of ``privacy.order_flow``: how an order reaches execution."""
