"""Parts of a chapter's checks kept in a module of their own (chapter 5's blocks)."""
