"""An auth/access/group/dispatch script whose import fails."""
raise ImportError("auth-broken-import")
