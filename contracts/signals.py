"""What the contract records announce, for apps above them (notifications) to fan out.

Plain Django signals, sent inside the writing service's transaction: what receivers write
commits or rolls back with it, and a receiver that raises rolls the write back.
"""

import django.dispatch

# Sent by ``contracts.comments.comment_add`` with `comment`, `contract` (id, tenant and title
# loaded) and `author`, once the comment and its audit row are written.
comment_added = django.dispatch.Signal()
