"""Outside reference implementations our tests compare against, pinned in an npm project (package-lock.json)."""
