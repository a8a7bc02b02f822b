"""HTTP building blocks shared by the FacePass services: errors, auth, request ids, health."""
