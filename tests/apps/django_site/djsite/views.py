from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt


def page(request):
    return render(request, "page.html", {
        "name": request.GET.get("name", "world"),
        "items": ["alpha", "beta", "gamma"],
    })


def api_json(request):
    return JsonResponse({
        "framework": "django",
        "method": request.method,
        "path": request.path,
        "path_info": request.path_info,
        "script_name": request.META.get("SCRIPT_NAME"),
        "query": request.GET.dict(),
        "host": request.get_host(),
        "is_secure": request.is_secure(),
    })


@csrf_exempt
def form(request):
    if request.method != "POST":
        return JsonResponse({"error": "POST only"}, status=405)
    return JsonResponse({"form": request.POST.dict(), "content_type": request.content_type})


def error(request):
    raise RuntimeError("django view failed on purpose")
