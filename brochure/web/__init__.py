"""The front-desk web page (`brochure desk`): pick, personalise, preview and deliver handouts.

A thin layer at the edge, beside cli.py: views parse a form, call the
library (brochure.deliver for patients and delivery, build/watch/check for
the content status) and render a template. No business rule lives here.
It may import any part of brochure except cli.py; nothing in brochure
imports it but cli.py, which registers the `desk` command.
"""
