"""moto's server as the AWS test upstream, with one addition: Bedrock's
InvokeModel answers as an Anthropic model on Bedrock does.

Everything Cordon is tested on is moto's own: routing by host, SigV4
verification with the session's secret (botocore's signer, once IAM
enforcement is on), the session token, and the role's IAM policy. moto's
InvokeModel checks all of that and then answers `{}`, since no model runs
locally; this answer replaces only that, with the Messages API body
Anthropic models return on Bedrock (`model`, `content`, `usage`), so the
usage Cordon prices is what a real answer carries. The token counts are
derived from the request (words in, `max_tokens` out) so the test can
predict them.

  python moto_server.py [moto_server arguments...]
"""
import sys

from moto.bedrockruntime.models import BedrockRuntimeBackend
from moto.server import main


def invoke_model(self, payload, model_id):
    assert payload is not None and model_id is not None
    words = 0
    for message in payload.get("messages", []):
        content = message.get("content", "")
        if isinstance(content, list):
            content = " ".join(part.get("text", "") for part in content)
        words += len(content.split())
    # anthropic.claude-3-haiku-20240307-v1:0 -> claude-3-haiku-20240307
    model = model_id.split(".", 1)[-1].rsplit("-v", 1)[0]
    return {
        "id": "msg_bdrk_moto",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {"input_tokens": words, "output_tokens": int(payload.get("max_tokens", 0))},
    }


BedrockRuntimeBackend.invoke_model = invoke_model
sys.exit(main(sys.argv[1:]))
