# Importable only through WSGIPythonPath {apps}/extra_path.
VALUE = "from WSGIPythonPath"
