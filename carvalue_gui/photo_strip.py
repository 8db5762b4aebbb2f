"""The list of loaded photos: thumbnail, file name and whole-photo estimate per row, plus a
file-drop filter that any widget can share (drops on the list, the photo or the window)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import (
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QImage,
    QPainter,
    QPaintEvent,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from carvalue_gui.elide import elide_keep_year
from core.money import format_dollars
from core.predictor import Prediction

KEY_ROLE = Qt.ItemDataRole.UserRole
WARN_ROLE = Qt.ItemDataRole.UserRole + 1  # a row whose estimate is not for a whole car: its badge
BADGE_PX = 20  # the warning badge on the thumbnail's corner
BADGE_FILL = QColor(255, 193, 7)
THUMB_SIZE = QSize(96, 72)
THUMB_CACHE = 300  # decoded thumbnails kept: the rows on screen and those scrolled past lately


def local_paths(urls: list[QUrl]) -> list[str]:
    return [u.toLocalFile() for u in urls if u.isLocalFile() and u.toLocalFile()]


class FileDropFilter(QObject):
    """Event filter: accepts drags that carry local files/folders, emits their paths on drop."""

    paths_dropped = Signal(list)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            assert isinstance(event, QDragEnterEvent | QDropEvent)
            if event.mimeData().hasUrls() and local_paths(event.mimeData().urls()):
                event.acceptProposedAction()
                return True
            return False
        if kind == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            paths = local_paths(event.mimeData().urls()) if event.mimeData().hasUrls() else []
            if paths:
                event.acceptProposedAction()
                self.paths_dropped.emit(paths)
                return True
        return False

    def watch(self, widget: QWidget) -> None:
        """Accept drops on ``widget`` (on its viewport for scroll areas)."""
        target = widget.viewport() if hasattr(widget, "viewport") else widget
        for w in {widget, target}:
            w.setAcceptDrops(True)
            w.installEventFilter(self)


class PhotoItem(QListWidgetItem):
    """A row that keeps its thumbnail as JPEG bytes; the list decodes it when it paints the row."""

    def __init__(self, key: int, jpeg: bytes) -> None:
        super().__init__("")
        self.key, self.jpeg = key, jpeg

    def data(self, role: int) -> object:
        if role == Qt.ItemDataRole.DecorationRole:
            strip = self.listWidget()
            if isinstance(strip, PhotoStrip):
                return strip.thumbnail(self.key, self.jpeg)
        return super().data(role)


def centred_pixmap(image: QImage, size: QSize) -> QPixmap:
    """``image`` centred on a transparent canvas of ``size``, so every row's text lines up."""
    canvas = QImage(size, QImage.Format.Format_ARGB32_Premultiplied)
    canvas.fill(0)
    if not image.isNull():
        painter = QPainter(canvas)
        painter.drawImage((size.width() - image.width()) // 2, (size.height() - image.height()) // 2, image)
        painter.end()
    return QPixmap.fromImage(canvas)


class RowDelegate(QStyledItemDelegate):
    """Paints a row's lines each shortened its own way where the list is narrow: the file name in
    the middle (its end and extension stay), the make/model keeping its year, the rest at the
    right; a row whose estimate is not for a whole car gets a warning badge on its thumbnail,
    which no width can cut off. ``painted`` keeps what each row showed last (tests)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.painted: dict[int, tuple[list[str], QRect | None, QRect]] = {}  # key: lines, badge, text rect

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget is not None else QApplication.style()
        text_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
        icon_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemDecoration, opt, widget)
        lines = opt.text.splitlines()  # (Qt's item text has U+2028 for "\n": splitlines takes both)
        opt.text = ""
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        fm = opt.fontMetrics
        width = max(0, text_rect.width() - 4)
        shown = [fm.elidedText(line, Qt.TextElideMode.ElideMiddle, width) if i == 0
                 else elide_keep_year(line, fm, width) for i, line in enumerate(lines)]
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setPen(opt.palette.highlightedText().color() if selected else opt.palette.text().color())
        painter.setFont(opt.font)
        top = text_rect.top() + (text_rect.height() - len(shown) * fm.lineSpacing()) // 2
        for i, line in enumerate(shown):
            painter.drawText(QRect(text_rect.left() + 2, top + i * fm.lineSpacing(), width, fm.lineSpacing()),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), line)
        badge = None
        if index.data(WARN_ROLE):
            badge = QRect(icon_rect.left(), icon_rect.bottom() - BADGE_PX + 1, BADGE_PX, BADGE_PX)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QColor(90, 60, 0))
            painter.setBrush(BADGE_FILL)
            painter.drawRoundedRect(badge, 4, 4)
            font = QFont(opt.font)
            font.setBold(True)
            painter.setFont(font)
            painter.drawText(badge, int(Qt.AlignmentFlag.AlignCenter), "!")
        painter.restore()
        key = index.data(KEY_ROLE)
        if key is not None:
            self.painted[int(key)] = (shown, badge, text_rect)


class PhotoStrip(QListWidget):
    """Rows keyed by the window's photo keys; ``photo_selected(key)`` on selection."""

    photo_selected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIconSize(THUMB_SIZE)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.NoDragDrop)
        self.setMinimumWidth(200)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.row_delegate = RowDelegate(self)
        self.setItemDelegate(self.row_delegate)
        self._items: dict[int, QListWidgetItem] = {}
        self._thumbs: OrderedDict[int, QPixmap] = OrderedDict()  # decoded thumbnails, LRU first
        self.currentItemChanged.connect(self._on_current)

    def add_photo(self, key: int, path: str, thumbnail: bytes) -> None:
        """A row for the photo; ``thumbnail`` is a small JPEG (see ``loader.make_thumbnail``)."""
        item = PhotoItem(key, thumbnail)
        item.setData(KEY_ROLE, key)
        item.setToolTip(path)
        self._items[key] = item
        self.addItem(item)
        self.set_estimate(key, path, None)

    def set_estimate(self, key: int, path: str, pred: Prediction | None, note: str = "",
                     crop: bool = False) -> None:
        """The row's text: ``pred`` (for the user's crop box when ``crop``), or ``note``."""
        item = self._items.get(key)
        if item is None:
            return
        name = Path(path).name or path
        if pred is None:
            rest = note or "estimating…"
        elif not pred.priced:
            rest = "no car" + (" in the crop" if crop else "")
        elif pred.unknown_car:  # its make; the closest class's price is no answer
            rest = f"{pred.makes[0].label if pred.makes else 'a car'}: not in the catalogue"
            rest += f"\nif it were {pred.make_models[0].label}: {format_dollars(pred.median_price)}"
        else:
            rest = format_dollars(pred.median_price) + (" (crop)" if crop else "")
            rest += "" if pred.looks_like_car else " (part of a car?)"
            named = pred.price is not None and pred.price.car_source == "user"
            rest += f"\n{pred.price.car} (your car)" if named and pred.price is not None else \
                f"\n{pred.make_models[0].label}"
        item.setText(f"{name}\n{rest}")
        item.setToolTip(f"{path}\n{rest}")
        item.setData(WARN_ROLE, pred is not None and (not pred.looks_like_car or pred.unknown_car))  # the badge

    def select(self, key: int) -> None:
        item = self._items.get(key)
        if item is not None:
            self.setCurrentItem(item)

    def current_key(self) -> int | None:
        item = self.currentItem()
        return None if item is None else int(item.data(KEY_ROLE))

    def keys(self) -> list[int]:
        return [int(self.item(i).data(KEY_ROLE)) for i in range(self.count())]

    def remove(self, key: int) -> None:
        item = self._items.pop(key, None)
        self._thumbs.pop(key, None)
        if item is not None:
            self.takeItem(self.row(item))

    def thumbnail(self, key: int, jpeg: bytes) -> QPixmap:
        """The row's thumbnail, decoded when first painted and kept for the last THUMB_CACHE
        rows painted (a pixmap for every row would take 27 KB a photo)."""
        pixmap = self._thumbs.get(key)
        if pixmap is not None:
            self._thumbs.move_to_end(key)
            return pixmap
        pixmap = centred_pixmap(QImage.fromData(jpeg, "JPEG"), THUMB_SIZE)
        self._thumbs[key] = pixmap
        while len(self._thumbs) > THUMB_CACHE:
            self._thumbs.popitem(last=False)
        return pixmap

    def _on_current(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self.photo_selected.emit(int(current.data(KEY_ROLE)))

    def paintEvent(self, e: QPaintEvent) -> None:  # noqa: N802 - Qt override
        super().paintEvent(e)
        if self.count() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Drop photos or folders here")
            painter.end()
