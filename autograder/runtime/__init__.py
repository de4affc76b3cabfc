"""The student runtime (untrusted side). Standard library only, relative imports only:
the sandbox mounts this folder on its own, under another package name."""
