from django.contrib import admin, messages
from django.utils import timezone

from common.text import count_of

from .admin_scoping import OrganizationScopedAdmin
from .models import ApiKey, Membership, Organization
from .services import api_key_save_new, api_key_update


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    list_select_related = ["user", "organization"]
    search_fields = ["user__username", "user__email", "organization__slug"]
    raw_id_fields = ["user"]


@admin.register(ApiKey)
class ApiKeyAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    list_display = ["name", "organization", "prefix", "read_only", "is_active", "last_used_at", "created_at"]
    list_filter = ["read_only", ("revoked_at", admin.EmptyFieldListFilter), "organization"]
    list_select_related = ["organization"]
    search_fields = ["name", "prefix", "organization__slug"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["organization", "name", "read_only"]
        return ["organization", "name", "read_only", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["organization"] if obj else [])

    @admin.display(boolean=True, description="Active")
    def is_active(self, obj: ApiKey) -> bool:
        return obj.is_active

    def save_model(self, request, obj, form, change):
        if change:
            # Only the changed fields: a full save() of the form's instance would write back
            # the `last_used_at`/`revoked_at` it read, undoing a revocation made meanwhile.
            changed = {name: form.cleaned_data[name] for name in ("name", "read_only") if name in form.changed_data}
            api_key_update(api_key=obj, **changed)
            return
        raw_key = api_key_save_new(api_key=obj)
        self.message_user(
            request,
            f"The new API key is {raw_key} — copy it now: it is stored only hashed and will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count_of(count, 'API key')}.", messages.SUCCESS)
