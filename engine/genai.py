"""OpenTelemetry GenAI semantic conventions for the LLM calls a run makes: which provider a
model belongs to (`gen_ai.provider.name`), from the model name the framework reports.

Models named `provider/model` (LiteLLM's form, which CrewAI uses) say it themselves; bare
names are recognised by the families the big providers use. An unknown one is left out
rather than guessed.
"""

from __future__ import annotations

# LiteLLM provider prefixes whose GenAI name differs from the prefix.
_PREFIXES = {
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "watsonx": "ibm.watsonx.ai",
    "xai": "x_ai",
}
# Bare model names: their family's provider.
_FAMILIES = (
    (("gpt-", "o1", "o3", "o4", "chatgpt", "text-embedding", "davinci"), "openai"),
    (("claude",), "anthropic"),
    (("gemini",), "gcp.gemini"),
    (("mistral", "mixtral", "codestral"), "mistral_ai"),
    (("command",), "cohere"),
    (("deepseek",), "deepseek"),
    (("grok",), "x_ai"),
)


def provider_of(model: str) -> str:
    """The `gen_ai.provider.name` of a model name ('' when it cannot be told)."""
    name = model.strip().lower()
    if "/" in name:
        prefix = name.split("/", 1)[0]
        return _PREFIXES.get(prefix, prefix)
    for prefixes, provider in _FAMILIES:
        if name.startswith(prefixes):
            return provider
    return ""
