"""The torch module of ``toy_topic``: the mean of a document's token vectors, a linear
layer, one score per topic label."""
import torch


class TopicModule(torch.nn.Module):
    """Topic logits ``(batch, n_labels)`` of padded token vectors ``(batch, time, width)``."""

    def __init__(self, input_width: int, n_labels: int, *, hidden_width: int, dropout: float):
        super().__init__()
        self.dropout = torch.nn.Dropout(dropout)
        layers = [torch.nn.Linear(input_width, hidden_width), torch.nn.ReLU()] if hidden_width else []
        self.hidden = torch.nn.Sequential(*layers)
        self.output = torch.nn.Linear(hidden_width or input_width, n_labels)

    def forward(self, X: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(X.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).to(X.device, X.dtype)
        pooled = (X * mask.unsqueeze(2)).sum(1) / lengths.clamp(min=1).to(X.device, X.dtype).unsqueeze(1)
        return self.output(self.hidden(self.dropout(pooled)))
