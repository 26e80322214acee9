"""The DICOM network layer: associations, C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE."""
