"""What is kept on disk: safe atomic files (``files``), value distributions (``distribution``),
reference banks (``bank``) and answers read from other places (``sources``)."""
