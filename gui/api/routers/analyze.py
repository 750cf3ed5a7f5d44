"""One uploaded image's faces."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from emotion.errors import MoodtunesError
from emotion.recognizer import FaceResult
from emotion.sources import ImageTooLarge, Picture, SourceError, decode_image
from gui.api.errors import ApiError
from gui.api.models import Analysis, errors
from gui.api.state import ServerStateDep
from gui.api.upload import read_body

router = APIRouter()


@router.post(
    "/analyze", summary="An image's bytes as the body (curl --data-binary @photo.jpg) -> its faces",
    openapi_extra={"requestBody": {"required": True, "description": "The image file's bytes, not a form.",
                                   "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}},
    responses=errors({400: "Not an image, or no body", 408: "The body came too slowly", 413: "Too large",
                      415: "A form (multipart) instead of the image's bytes",
                      503: "The recognizer cannot be made (its model, detector or calibration)"}),
)
async def analyze(request: Request, state: ServerStateDep) -> Analysis:
    """The faces in an image, with their boxes and probabilities: `curl --data-binary @photo.jpg`."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "Send the image's bytes as the body, not a form: curl --data-binary @photo.jpg "
                            f"-H 'Content-Type: image/jpeg' {request.url.replace(query='')}")
    data = await read_body(request, state.settings)
    notes: list[str] = []

    def work() -> tuple[Picture, list[FaceResult]]:
        picture = decode_image(data, "the uploaded image", warn=notes.append)
        with state.analyze_lock:
            return picture, state.recognizer().analyze(picture.image)

    try:
        picture, faces = await run_in_threadpool(work)
    except ImageTooLarge as exc:
        raise ApiError(413, str(exc)) from exc
    except SourceError as exc:
        raise ApiError(400, str(exc)) from exc
    except MoodtunesError as exc:  # the recognizer could not be made: its model, detector or calibration
        raise ApiError(503, str(exc)) from exc
    # Boxes and size in the uploaded image's own pixels, even when a huge JPEG was decoded reduced.
    height, width = (round(side * picture.reduction) for side in picture.image.shape[:2])
    return Analysis(width=width, height=height, faces=[face.to_dict(picture.reduction) for face in faces], notes=notes)
