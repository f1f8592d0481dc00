"""A VLM judge over any OpenAI-compatible chat-completions API: question-based adherence and a rubric."""
