"""What the report stages write: figures (``plots``), tables (``tables``, ``defense_table``), the
numbers quoted from papers (``paper``) and the summary ``make repro`` prints (``summary``)."""
