"""Serving formats of a decision's model: merge the adapter, convert, quantize (``ladder deploy``)."""
