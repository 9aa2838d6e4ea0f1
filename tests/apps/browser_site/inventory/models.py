from django.db import models


class Document(models.Model):
    """One uploaded file with a title (the object the browser test creates in the admin)."""

    title = models.CharField(max_length=200)
    attachment = models.FileField(upload_to="uploads/")
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.title
